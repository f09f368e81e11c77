package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
)

// TestDirectSubscriptionMatchesOfficial subscribes to the same $all of the
// KurrentDB-compatible server through Chronicler's own connection and
// through the official client, with each filter kind, from the start and
// from a position, and requires the same events, field by field: what the
// official client's Subscription gives is the reference.
func TestDirectSubscriptionMatchesOfficial(t *testing.T) {
	_, c := directClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Events of every shape: with and without data and metadata, empty
	// ones, unicode, a large one, in two categories.
	var want int
	for i := range 40 {
		ev := esdb.EventData{EventID: uuid.New(), EventType: fmt.Sprintf("T%d", i%3), ContentType: esdb.ContentTypeJson}
		switch i % 5 {
		case 0:
			ev.Data, ev.Metadata = []byte(fmt.Sprintf(`{"i":%d}`, i)), []byte(`{"m":"é😀"}`)
		case 1:
			ev.Data = []byte(`{}`)
		case 2:
			ev.Metadata = []byte(`{"only":"metadata"}`)
		case 3:
			ev.Data = []byte(strings.Repeat("x", 70000))
		case 4:
			ev.EventType = "Événement"
			ev.ContentType = esdb.ContentTypeBinary
			ev.Data = []byte{0, 1, 2, 0xff}
		}
		stream := fmt.Sprintf("alpha-%d", i%7)
		if i%2 == 1 {
			stream = fmt.Sprintf("beta-%d", i%7)
		}
		if _, err := c.db.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, ev); err != nil {
			t.Fatal(err)
		}
		want++
	}
	for _, f := range []Filter{{Regex: `^[^$]`}, {Prefixes: []string{"T1", "Év"}}, {ByStream: true, Prefixes: []string{"beta-"}}} {
		direct := collect(t, ctx, c, c.direct, f, contract.StoreFrom{Start: true}, 0)
		official := collect(t, ctx, c, nil, f, contract.StoreFrom{Start: true}, len(direct))
		if len(direct) == 0 || !reflect.DeepEqual(direct, official) {
			t.Fatalf("filter %+v: %d events through the direct connection, %d through the official client, or they differ:\n%v\n%v", f, len(direct), len(official), direct, official)
		}
		if f.Regex != "" && len(direct) < want {
			t.Fatalf("filter %+v: %d events; want at least the %d appended", f, len(direct), want)
		}
		from := contract.After(direct[len(direct)/2].Pos)
		rest := collect(t, ctx, c, c.direct, f, from, len(direct)-len(direct)/2-1)
		if !reflect.DeepEqual(rest, direct[len(direct)/2+1:]) {
			t.Fatalf("filter %+v: from %s the direct subscription gave %d events; want the %d after it", f, from, len(rest), len(direct)-len(direct)/2-1)
		}
	}
}

// directClient starts a KurrentDB-compatible server and connects to it,
// with a direct connection (single node); both end with the test.
func directClient(t *testing.T) (*kurrentdb.Server, *Client) {
	t.Helper()
	srv, err := kurrentdb.Start(kurrentdb.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := Connect(ClientConfig{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if c.direct == nil {
		t.Fatalf("%s: no direct connection for a single-node store", srv.URL())
	}
	return srv, c
}

// collect subscribes through d (nil: the official client) and returns the
// events until n arrived (n 0: until none arrives for half a second).
func collect(t *testing.T, ctx context.Context, c *Client, d *direct, f Filter, from contract.StoreFrom, n int) []*Recorded {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *Recorded, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.subscribe(ctx, d, f, from, out, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	var got []*Recorded
	for n == 0 || len(got) < n {
		select {
		case ev := <-out:
			got = append(got, ev)
		case <-time.After(500 * time.Millisecond):
			if n == 0 {
				return got
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d events before the deadline", len(got), n)
		}
	}
	return got
}

// readAnswers are ReadResp answers as a server writes them.
func readAnswers() []*streams.ReadResp {
	rec := func(typ string, data, meta []byte, created string) *streams.ReadResp_ReadEvent_RecordedEvent {
		return &streams.ReadResp_ReadEvent_RecordedEvent{
			Id:               &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: -7, LeastSignificantBits: 1 << 40}}},
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("bulk-17")},
			StreamRevision:   3, PreparePosition: 1234, CommitPosition: 1234,
			Metadata:       map[string]string{"type": typ, "content-type": "application/json", "created": created},
			CustomMetadata: meta, Data: data,
		}
	}
	ev := func(r *streams.ReadResp_ReadEvent_RecordedEvent) *streams.ReadResp {
		return &streams.ReadResp{Content: &streams.ReadResp_Event{Event: &streams.ReadResp_ReadEvent{Event: r,
			Position: &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: 1234}}}}
	}
	return []*streams.ReadResp{
		ev(rec("BulkRowInserted", []byte(`{"id":17}`), []byte(`{"slot":"s"}`), "17000000000000000")),
		ev(rec("", nil, nil, "0")),
		ev(rec("T", []byte{}, []byte{}, "-5")),
	}
}

// otherAnswers are answers the fast path leaves to proto.Unmarshal.
func otherAnswers() []*streams.ReadResp {
	link := readAnswers()[0]
	link.GetEvent().Link = link.GetEvent().Event
	return []*streams.ReadResp{
		{Content: &streams.ReadResp_Confirmation{Confirmation: &streams.ReadResp_SubscriptionConfirmation{SubscriptionId: "x"}}},
		{Content: &streams.ReadResp_Checkpoint_{Checkpoint: &streams.ReadResp_Checkpoint{CommitPosition: 9, PreparePosition: 9}}},
		{Content: &streams.ReadResp_CaughtUp_{CaughtUp: &streams.ReadResp_CaughtUp{}}},
		link,
	}
}

func TestReadResponseDecoding(t *testing.T) {
	for i, m := range readAnswers() {
		b, _ := proto.Marshal(m)
		r := readResponse{types: map[string]string{}}
		if _, ok := r.fast(b); !ok {
			t.Fatalf("answer %d is not read by the fast path: %v", i, m)
		}
		checkRead(t, b)
	}
	for i, m := range otherAnswers() {
		b, _ := proto.Marshal(m)
		var r readResponse
		if _, ok := r.fast(b); ok {
			t.Fatalf("answer %d taken by the fast path: %v", i, m)
		}
		if err := r.decode(b); err != nil || r.confirmed != (i == 0) || (r.ev != nil) != (i == 3) {
			t.Fatalf("answer %d: confirmed %v, event %v, err %v", i, r.confirmed, r.ev, err)
		}
	}
}

// checkRead fails unless what the fast path reads from b (if it takes it)
// is what proto.Unmarshal and the official client's conversion read.
func checkRead(t *testing.T, b []byte) {
	t.Helper()
	r := readResponse{types: map[string]string{}}
	got, ok := r.fast(b)
	if !ok {
		return
	}
	var m streams.ReadResp
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatalf("%x: the fast path read %+v, proto.Unmarshal fails: %v", b, got, err)
	}
	want := slowEvent(&m)
	if want == nil || got.ID != want.ID || got.Stream != want.Stream || got.Revision != want.Revision || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) ||
		!bytes.Equal(got.Metadata, want.Metadata) || (got.Metadata == nil) != (want.Metadata == nil) ||
		got.Pos != want.Pos || !got.Created.Equal(want.Created) {
		t.Fatalf("%x: fast path read %+v; proto.Unmarshal reads %+v", b, got, want)
	}
	// The official client's own conversion of the same answer.
	if rec := m.GetEvent().GetEvent(); rec != nil {
		most, least := esdb.UUIDAsInt64(got.ID)
		if s := rec.GetId().GetStructured(); s.GetMostSignificantBits() != most || s.GetLeastSignificantBits() != least {
			t.Fatalf("%x: id %s; the answer's is (%d, %d)", b, got.ID, s.GetMostSignificantBits(), s.GetLeastSignificantBits())
		}
	}
}

// FuzzReadResponse: whatever bytes the fast path takes, proto.Unmarshal
// takes too and reads alike.
func FuzzReadResponse(f *testing.F) {
	for _, m := range append(readAnswers(), otherAnswers()...) {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkRead(t, b) })
}

func BenchmarkReadResponse(b *testing.B) {
	raw, _ := proto.Marshal(readAnswers()[0])
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		r := readResponse{types: map[string]string{}}
		for b.Loop() {
			if err := r.decode(raw); err != nil || r.ev == nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m streams.ReadResp
			if err := proto.Unmarshal(raw, &m); err != nil || slowEvent(&m) == nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDirectSubscriptionResumesAfterDrop: the store ends the direct
// subscription (DropSubscriptions, as a restart or leader change would)
// three times while events are appended and delivered; the subscription
// resumes after the last event delivered, so every event arrives exactly
// once, in the order the store wrote them.
func TestDirectSubscriptionResumesAfterDrop(t *testing.T) {
	srv, c := directClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const rounds, perRound = 4, 250
	appendRound := func(r int) []uuid.UUID {
		var ids []uuid.UUID
		for i := range perRound {
			ev := esdb.EventData{EventID: uuid.New(), EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(fmt.Sprintf(`{"r":%d,"i":%d}`, r, i))}
			if _, err := c.db.AppendToStream(ctx, fmt.Sprintf("s-%d", i%17), esdb.AppendToStreamOptions{}, ev); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ev.EventID)
		}
		return ids
	}
	sctx, stop := context.WithCancel(ctx)
	out := make(chan *Recorded) // unbuffered: a drop finds events not yet delivered
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.subscribe(sctx, c.direct, Filter{Regex: `^[^$]`}, contract.StoreFrom{Start: true}, out, slog.New(slog.DiscardHandler))
	}()
	defer func() { stop(); <-done }()
	var want, got []uuid.UUID
	var last contract.StorePos
	for r := range rounds {
		want = append(want, appendRound(r)...)
		// Take half of what is outstanding, drop, then the rest of the round.
		for len(got) < len(want)-perRound/2 {
			got = append(got, recvOne(t, ctx, out, &last))
		}
		if r < rounds-1 {
			srv.DropSubscriptions()
		}
	}
	for len(got) < len(want) {
		got = append(got, recvOne(t, ctx, out, &last))
	}
	select {
	case ev := <-out:
		t.Fatalf("an event after all %d: %s %s at %v (delivered twice?)", len(want), ev.Stream, ev.ID, ev.Pos)
	case <-time.After(300 * time.Millisecond):
	}
	if !reflect.DeepEqual(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("event %d is %s, want %s (skipped or delivered twice across a drop)", i, got[i], want[i])
			}
		}
	}
}

// recvOne is the next event on out; its position must be after *last.
func recvOne(t *testing.T, ctx context.Context, out <-chan *Recorded, last *contract.StorePos) uuid.UUID {
	t.Helper()
	select {
	case ev := <-out:
		if ev.Pos.Commit < last.Commit || (ev.Pos.Commit == last.Commit && ev.Pos.Prepare <= last.Prepare) {
			t.Fatalf("%s at %v after %v: out of order", ev.ID, ev.Pos, *last)
		}
		*last = ev.Pos
		return ev.ID
	case <-ctx.Done():
		t.Fatal("events missing at the deadline")
	}
	return uuid.Nil
}
