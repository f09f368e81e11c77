package conformance_test

import (
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// TestReadStream covers forwards/backwards reads from start, end and a
// revision, with counts, on one 10-event stream.
func TestReadStream(t *testing.T) {
	s := newStream("read")
	before := time.Now().Add(-time.Hour)
	appendOK(t, s, esdb.NoStream{}, evs(10, "Read")...)
	cases := []struct {
		name  string
		opts  esdb.ReadStreamOptions
		count uint64
		want  []uint64
	}{
		{"forwards from start", esdb.ReadStreamOptions{From: esdb.Start{}}, 100, []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"forwards from start, count 3", esdb.ReadStreamOptions{From: esdb.Start{}}, 3, []uint64{0, 1, 2}},
		{"forwards from revision 3 (inclusive)", esdb.ReadStreamOptions{From: esdb.Revision(3)}, 4, []uint64{3, 4, 5, 6}},
		{"forwards from past the end", esdb.ReadStreamOptions{From: esdb.Revision(50)}, 4, []uint64{}},
		{"forwards from end", esdb.ReadStreamOptions{From: esdb.End{}}, 4, []uint64{}},
		{"backwards from end", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 3, []uint64{9, 8, 7}},
		{"backwards from revision 4 (inclusive)", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(4)}, 100, []uint64{4, 3, 2, 1, 0}},
		{"backwards from past the end", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(50)}, 2, []uint64{9, 8}},
		{"backwards from start", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Start{}}, 5, []uint64{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readStream(t, s, tc.opts, tc.count)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(revisions(got), tc.want) {
				t.Fatalf("revisions = %v, want %v", revisions(got), tc.want)
			}
		})
	}
	got, _ := readStream(t, s, esdb.ReadStreamOptions{}, 100)
	var last uint64
	for _, e := range got {
		r := e.OriginalEvent()
		if r.CreatedDate.Before(before) || r.CreatedDate.After(time.Now().Add(time.Hour)) {
			t.Errorf("revision %d created %v: not a time near now (ticks conversion wrong?)", r.EventNumber, r.CreatedDate)
		}
		if r.Position.Commit <= last || r.Position.Commit != r.Position.Prepare {
			t.Errorf("revision %d position %+v: want commit == prepare, increasing", r.EventNumber, r.Position)
		}
		last = r.Position.Commit
	}
}

// TestReadMissingStream: a stream never written reads as not found, in both
// directions.
func TestReadMissingStream(t *testing.T) {
	s := newStream("missing")
	for _, dir := range []esdb.Direction{esdb.Forwards, esdb.Backwards} {
		if _, err := readStream(t, s, esdb.ReadStreamOptions{Direction: dir}, 10); codeOf(err) != esdb.ErrorCodeResourceNotFound {
			t.Errorf("direction %v: err = %v, want ResourceNotFound", dir, err)
		}
	}
}

func readAll(t testing.TB, opts esdb.ReadAllOptions, count uint64) []*esdb.ResolvedEvent {
	t.Helper()
	rs, err := db.ReadAll(ctx(t), opts, count)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reading $all: %v", err)
			}
			return out
		}
		out = append(out, ev)
	}
}

func onlyStreams(events []*esdb.ResolvedEvent, streams ...string) []*esdb.ResolvedEvent {
	var out []*esdb.ResolvedEvent
	for _, e := range events {
		if slices.Contains(streams, e.OriginalEvent().StreamID) {
			out = append(out, e)
		}
	}
	return out
}

// TestReadAll: $all holds the events of several streams in append order with
// strictly increasing positions; forwards from P includes P, backwards from
// P excludes it.
func TestReadAll(t *testing.T) {
	a, b, c := newStream("alla"), newStream("allb"), newStream("allc")
	var order []esdb.EventData
	var firstPos, thirdPos uint64
	for i := 0; i < 3; i++ {
		for _, s := range []string{a, b, c} {
			e := evs(1, "AllOrder")
			res := appendOK(t, s, esdb.Any{}, e...)
			order = append(order, e...)
			if len(order) == 1 {
				firstPos = res.CommitPosition
			}
			if len(order) == 3 {
				thirdPos = res.CommitPosition
			}
		}
	}
	fwd := onlyStreams(readAll(t, esdb.ReadAllOptions{From: esdb.Position{Commit: firstPos, Prepare: firstPos}}, 10_000), a, b, c)
	if !slices.Equal(ids(fwd), dataIDs(order)) {
		t.Fatalf("$all forwards from the first position = %v, want %v", ids(fwd), dataIDs(order))
	}
	for i := 1; i < len(fwd); i++ {
		if fwd[i].OriginalEvent().Position.Commit <= fwd[i-1].OriginalEvent().Position.Commit {
			t.Fatalf("positions not increasing at %d: %v then %v", i, fwd[i-1].OriginalEvent().Position, fwd[i].OriginalEvent().Position)
		}
	}
	if fwd[0].OriginalEvent().Position.Commit != firstPos || fwd[0].Commit == nil || *fwd[0].Commit != firstPos {
		t.Errorf("forwards from %d starts at %+v", firstPos, fwd[0].OriginalEvent().Position)
	}
	back := onlyStreams(readAll(t, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.Position{Commit: thirdPos, Prepare: thirdPos}}, 10_000), a, b, c)
	if want := []esdb.EventData{order[1], order[0]}; !slices.Equal(ids(back), dataIDs(want)) {
		t.Errorf("backwards from the third position = %v, want the second and first %v", ids(back), dataIDs(want))
	}
	end := onlyStreams(readAll(t, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 100), a, b, c)
	if len(end) == 0 || end[0].OriginalEvent().EventID != order[len(order)-1].EventID {
		t.Errorf("backwards from end does not start with the newest event")
	}
}

// TestResolveLinks: a "$>" link event ("N@stream") read with ResolveLinkTos
// comes back as the target event with the link alongside; without it, as
// the link itself.
func TestResolveLinks(t *testing.T) {
	target := newStream("target")
	e := evs(2, "Target")
	appendOK(t, target, esdb.NoStream{}, e...)
	links := newStream("links")
	appendOK(t, links, esdb.NoStream{}, esdb.EventData{EventType: "$>", ContentType: esdb.ContentTypeBinary, Data: []byte("1@" + target)})
	got, err := readStream(t, links, esdb.ReadStreamOptions{ResolveLinkTos: true}, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("read links: %d events, %v", len(got), err)
	}
	if got[0].Event == nil || got[0].Event.EventID != e[1].EventID || got[0].Link == nil || got[0].Link.StreamID != links {
		t.Fatalf("resolved = event %+v link %+v, want event 1 of %s via a link in %s", got[0].Event, got[0].Link, target, links)
	}
	raw, err := readStream(t, links, esdb.ReadStreamOptions{}, 10)
	if err != nil || len(raw) != 1 || raw[0].Event.EventType != "$>" || raw[0].Link != nil {
		t.Fatalf("unresolved read = %+v (%v), want the $> event itself", raw, err)
	}
}

// TestInvalidAllPosition: a $all position with prepare > commit is rejected
// (InvalidArgument, which the client reports as Unknown).
func TestInvalidAllPosition(t *testing.T) {
	rs, err := db.ReadAll(ctx(t), esdb.ReadAllOptions{From: esdb.Position{Commit: 1, Prepare: 2}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	_, err = rs.Recv()
	if codeOf(err) != esdb.ErrorCodeUnknown || grpcCode(err) != "InvalidArgument" {
		t.Fatalf("err = %v (code %d, grpc %s), want Unknown/InvalidArgument", err, codeOf(err), grpcCode(err))
	}
}

// TestStreamReadsCarryCommitPosition: stream reads (both directions) and
// stream subscriptions carry each event's commit position, as every 24.10
// event commits itself (ResolvedEvent.cs OriginalPosition, Streams.Read.cs
// ConvertToReadEvent); a resolved link carries the link's position. Some
// clients cannot read a stream without it (Python's get_stream).
func TestStreamReadsCarryCommitPosition(t *testing.T) {
	s := newStream("commitpos")
	res := appendOK(t, s, esdb.NoStream{}, evs(3, "Positioned")...)
	check := func(what string, events []*esdb.ResolvedEvent) {
		t.Helper()
		for _, e := range events {
			if e.Commit == nil {
				t.Fatalf("%s: revision %d has no commit position", what, e.OriginalEvent().EventNumber)
			}
			if *e.Commit != e.OriginalEvent().Position.Commit {
				t.Fatalf("%s: revision %d commit position %d, its recorded position %d", what, e.OriginalEvent().EventNumber, *e.Commit, e.OriginalEvent().Position.Commit)
			}
		}
	}
	fwd, err := readStream(t, s, esdb.ReadStreamOptions{}, 10)
	if err != nil || len(fwd) != 3 {
		t.Fatalf("read forwards: %d events, %v", len(fwd), err)
	}
	check("forwards", fwd)
	if *fwd[2].Commit != res.CommitPosition {
		t.Fatalf("last event's commit position %d, the append answered %d", *fwd[2].Commit, res.CommitPosition)
	}
	back, err := readStream(t, s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 10)
	if err != nil || len(back) != 3 {
		t.Fatalf("read backwards: %d events, %v", len(back), err)
	}
	check("backwards", back)

	sub, err := db.SubscribeToStream(ctx(t), s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r := collect(t, sub, untilCaughtUp)
	if r.dropped != nil || len(r.events) != 3 {
		t.Fatalf("subscription: %d events, dropped %v", len(r.events), r.dropped)
	}
	check("subscription", r.events)

	links := newStream("commitposlinks")
	lres := appendOK(t, links, esdb.NoStream{}, esdb.EventData{EventType: "$>", ContentType: esdb.ContentTypeBinary, Data: []byte("0@" + s)})
	got, err := readStream(t, links, esdb.ReadStreamOptions{ResolveLinkTos: true}, 10)
	if err != nil || len(got) != 1 || got[0].Link == nil {
		t.Fatalf("resolved link read: %d events (%v)", len(got), err)
	}
	if got[0].Commit == nil || *got[0].Commit != lres.CommitPosition {
		t.Fatalf("resolved link's commit position = %v, want the link's own %d", got[0].Commit, lres.CommitPosition)
	}
}
