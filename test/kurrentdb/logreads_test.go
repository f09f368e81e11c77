package kurrentdb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

// The server keeps events in its log, not in memory: reads other than of
// recent events decode them from the log (the file with a data directory,
// else the in-memory log) through a bounded cache. These tests write a
// store whose reads need every part of that (long streams across the
// index's skip blocks, many short streams interleaved, metadata, a
// soft-deleted and a tombstoned stream, links), then check every kind of
// read against what was written: with a cache too small to hold anything,
// in memory and on disk, and after a restart (replayed index, cold cache).

// written is the test's model of the store: events per stream in order,
// and all of them in $all order.
type written struct {
	streams map[string][]uuid.UUID
	all     []uuid.UUID
}

func writeStore(t *testing.T, db *esdb.Client) written {
	t.Helper()
	ctx := context.Background()
	w := written{streams: map[string][]uuid.UUID{}}
	add := func(stream string, n int) {
		t.Helper()
		evs := make([]esdb.EventData, n)
		for i := range evs {
			id := uuid.New()
			evs[i] = esdb.EventData{EventID: id, EventType: "Logged", ContentType: esdb.ContentTypeJson,
				Data: []byte(fmt.Sprintf(`{"stream":%q,"n":%d}`, stream, len(w.streams[stream]))), Metadata: []byte(`{"m":1}`)}
		}
		if _, err := db.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, evs...); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			w.streams[stream] = append(w.streams[stream], e.EventID)
			w.all = append(w.all, e.EventID)
		}
	}
	for round := 0; round < 60; round++ {
		add("long", 7) // 420 events: several skip blocks
		for s := 0; s < 5; s++ {
			add(fmt.Sprintf("short-%d", (round*5+s)%40), 1+round%3)
		}
	}
	add("gone", 3)
	add("dead", 2)
	add("capped", 10)
	var meta esdb.StreamMetadata
	meta.SetMaxCount(3)
	if _, err := db.SetStreamMetadata(ctx, "capped", esdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteStream(ctx, "gone", esdb.DeleteStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TombstoneStream(ctx, "dead", esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	link := esdb.EventData{EventID: uuid.New(), EventType: "$>", ContentType: esdb.ContentTypeBinary, Data: []byte("200@long")}
	if _, err := db.AppendToStream(ctx, "links", esdb.AppendToStreamOptions{}, link); err != nil {
		t.Fatal(err)
	}
	return w
}

// allEvents reads all of $all in the direction opts say.
func allEvents(t *testing.T, db *esdb.Client, opts esdb.ReadAllOptions) []allEntry {
	t.Helper()
	rs, err := db.ReadAll(context.Background(), opts, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []allEntry
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		r := ev.OriginalEvent()
		out = append(out, allEntry{r.EventID, r.StreamID, r.EventNumber, r.Position.Commit})
	}
}

// userIDs are the ids of the events writeStore appended with
// AppendToStream, as written.all lists them: no metadata ($$ streams), no
// tombstone (revision MaxInt64), no link.
func userIDs(entries []allEntry) []uuid.UUID {
	var out []uuid.UUID
	for _, e := range entries {
		if e.stream[0] != '$' && e.stream != "links" && e.revision != math.MaxInt64 {
			out = append(out, e.id)
		}
	}
	return out
}

// checkReads checks every kind of read against w and returns $all as read.
func checkReads(t *testing.T, db *esdb.Client, w written) []allEntry {
	t.Helper()
	ctx := context.Background()
	for stream, want := range w.streams {
		switch stream {
		case "gone", "dead", "capped":
			continue
		}
		if got := readIDsFrom(t, db, stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 1<<20); !slices.Equal(got, want) {
			t.Fatalf("%s forwards: %d events, want %d (or a different order)", stream, len(got), len(want))
		}
		back := readIDsFrom(t, db, stream, esdb.ReadStreamOptions{From: esdb.End{}, Direction: esdb.Backwards}, 10)
		tail := slices.Clone(want[max(0, len(want)-10):])
		slices.Reverse(tail)
		if !slices.Equal(back, tail) {
			t.Fatalf("%s backwards from the end: %v, want %v", stream, back, tail)
		}
	}
	long := w.streams["long"]
	for _, r := range []uint64{0, 62, 63, 64, 65, 127, 128, 300, 419} {
		got := readIDsFrom(t, db, "long", esdb.ReadStreamOptions{From: esdb.Revision(r)}, 70)
		if want := long[r:min(int(r)+70, len(long))]; !slices.Equal(got, want) {
			t.Fatalf("long forwards from %d: %d events, want %d", r, len(got), len(want))
		}
		got = readIDsFrom(t, db, "long", esdb.ReadStreamOptions{From: esdb.Revision(r), Direction: esdb.Backwards}, 70)
		want := slices.Clone(long[max(0, int(r)-69) : r+1])
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Fatalf("long backwards from %d: %d events, want %d", r, len(got), len(want))
		}
	}
	if got, want := readIDsFrom(t, db, "capped", esdb.ReadStreamOptions{From: esdb.Start{}}, 100), w.streams["capped"][7:]; !slices.Equal(got, want) {
		t.Fatalf("capped ($maxCount 3): %v, want %v", got, want)
	}
	for stream, want := range map[string]esdb.ErrorCode{"gone": esdb.ErrorCodeResourceNotFound, "dead": esdb.ErrorCodeStreamDeleted} {
		rs, err := db.ReadStream(ctx, stream, esdb.ReadStreamOptions{}, 10)
		if err == nil {
			_, err = rs.Recv()
			rs.Close()
		}
		if code(err) != want {
			t.Fatalf("reading %s: %v, want error code %v", stream, err, want)
		}
	}
	lrs, err := db.ReadStream(ctx, "links", esdb.ReadStreamOptions{ResolveLinkTos: true}, 10)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := lrs.Recv()
	lrs.Close()
	if err != nil || ev.Event == nil || ev.Event.EventID != long[200] || ev.Link == nil {
		t.Fatalf("link 200@long resolved to %+v (%v), want long's revision 200", ev, err)
	}

	all := allEvents(t, db, esdb.ReadAllOptions{From: esdb.Start{}})
	if got := userIDs(all); !slices.Equal(got, w.all) {
		t.Fatalf("$all forwards: %d user events, want %d in append order", len(got), len(w.all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].position <= all[i-1].position {
			t.Fatalf("$all positions not increasing at %d: %d after %d", i, all[i].position, all[i-1].position)
		}
	}
	back := allEvents(t, db, esdb.ReadAllOptions{From: esdb.End{}, Direction: esdb.Backwards})
	slices.Reverse(back)
	if !slices.Equal(back, all) {
		t.Fatalf("$all backwards is not $all forwards reversed (%d vs %d entries)", len(back), len(all))
	}
	mid := all[len(all)/2]
	from := allEvents(t, db, esdb.ReadAllOptions{From: esdb.Position{Commit: mid.position, Prepare: mid.position}})
	if !slices.Equal(from, all[len(all)/2:]) {
		t.Fatalf("$all forwards from position %d: %d entries, want %d", mid.position, len(from), len(all)-len(all)/2)
	}
	return all
}

// subscribeAllIDs subscribes to $all from from and collects events until
// caught up.
func subscribeAllIDs(t *testing.T, db *esdb.Client, from esdb.AllPosition) []allEntry {
	t.Helper()
	sub, err := db.SubscribeToAll(context.Background(), esdb.SubscribeToAllOptions{From: from})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var out []allEntry
	for {
		ev := sub.Recv()
		switch {
		case ev.SubscriptionDropped != nil:
			t.Fatalf("subscription dropped: %v", ev.SubscriptionDropped.Error)
		case ev.CaughtUp != nil:
			return out
		case ev.EventAppeared != nil:
			r := ev.EventAppeared.OriginalEvent()
			out = append(out, allEntry{r.EventID, r.StreamID, r.EventNumber, r.Position.Commit})
		}
	}
}

// checkSubscriptions checks catch-up subscriptions against w and all, then
// a live event on "long", which it returns.
func checkSubscriptions(t *testing.T, db *esdb.Client, w written, all []allEntry) uuid.UUID {
	t.Helper()
	if got := subscribeAllIDs(t, db, esdb.Start{}); !slices.Equal(got, all) {
		t.Fatalf("$all subscription from the start caught up with %d entries, want %d", len(got), len(all))
	}
	mid := all[len(all)/3]
	if got := subscribeAllIDs(t, db, esdb.Position{Commit: mid.position, Prepare: mid.position}); !slices.Equal(got, all[len(all)/3+1:]) {
		t.Fatalf("$all subscription after %d caught up with %d entries, want %d", mid.position, len(got), len(all)-len(all)/3-1)
	}
	sub, err := db.SubscribeToStream(context.Background(), "long", esdb.SubscribeToStreamOptions{From: esdb.Revision(100)})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []uuid.UUID
	for ev := sub.Recv(); ev.CaughtUp == nil; ev = sub.Recv() {
		if ev.SubscriptionDropped != nil {
			t.Fatalf("stream subscription dropped: %v", ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			got = append(got, ev.EventAppeared.OriginalEvent().EventID)
		}
	}
	if want := w.streams["long"][101:]; !slices.Equal(got, want) {
		t.Fatalf("stream subscription after revision 100: %d events, want %d", len(got), len(want))
	}
	// Live after catching up from the log.
	ev := esdbEvent()
	if _, err := db.AppendToStream(context.Background(), "long", esdb.AppendToStreamOptions{}, ev); err != nil {
		t.Fatal(err)
	}
	for {
		e := sub.Recv()
		if e.SubscriptionDropped != nil {
			t.Fatalf("stream subscription dropped: %v", e.SubscriptionDropped.Error)
		}
		if e.EventAppeared != nil {
			if id := e.EventAppeared.OriginalEvent().EventID; id != ev.EventID {
				t.Fatalf("live event %s, want %s", id, ev.EventID)
			}
			return ev.EventID
		}
	}
}

// TestReadsFromTheLog: with a record cache too small to hold anything,
// every read, in memory and with a data directory, is decoded from the log
// and matches what was written; after a restart (index replayed, the same
// cache) the same reads, decoded from the log again, give the same answers
// at the same positions.
func TestReadsFromTheLog(t *testing.T) {
	for _, mode := range []string{"memory", "data dir"} {
		t.Run(mode, func(t *testing.T) {
			opts := kurrentdb.Options{CacheSize: 1}
			if mode == "data dir" {
				opts.DataDir = t.TempDir()
			}
			srv := kurrentdbtest.Start(t, opts)
			db := kurrentdbtest.Client(t, srv.URL())
			w := writeStore(t, db)
			all := checkReads(t, db, w)
			live := checkSubscriptions(t, db, w, all)
			if f := srv.Footprint(); f.CacheMisses < int64(len(all)) {
				t.Fatalf("%d cache misses, want at least one per event ($all was read several times): %+v", f.CacheMisses, f)
			}
			w.streams["long"] = append(w.streams["long"], live)
			w.all = append(w.all, live)
			before := allEvents(t, db, esdb.ReadAllOptions{From: esdb.Start{}})
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if mode == "memory" {
				return
			}
			srv2 := kurrentdbtest.Start(t, opts) // the same tiny cache: reads after the restart come from the log too
			db2 := kurrentdbtest.Client(t, srv2.URL())
			after := checkReads(t, db2, w)
			if !slices.Equal(after, before) {
				t.Fatalf("$all after the restart differs: %d entries, %d before", len(after), len(before))
			}
			checkSubscriptions(t, db2, w, after)
			if f := srv2.Footprint(); f.CacheMisses < int64(len(after)) {
				t.Fatalf("after the restart: %d cache misses, want at least one per event: %+v", f.CacheMisses, f)
			}
		})
	}
}
