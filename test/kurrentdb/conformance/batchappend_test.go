package conformance_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestBatchAppendAdvertised: ServerFeatures lists batchappend for the
// Streams service, in the lowercase form the official client matches.
func TestBatchAppendAdvertised(t *testing.T) {
	got, err := serverfeatures.NewServerFeaturesClient(grpcConn(t)).GetSupportedMethods(ctx(t), &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range got.GetMethods() {
		if m.GetServiceName() == "event_store.client.streams.streams" && m.GetMethodName() == "batchappend" {
			return
		}
	}
	t.Fatalf("supported methods %v lack batchappend on event_store.client.streams.streams", got.GetMethods())
}

// TestBatchAppendSuccess: a batch append is answered with the stream's new
// revision and the position of its last event, echoes the correlation id
// and stream, and stores exactly the events sent (ids, order, types,
// content types, data, custom metadata) as the official client reads them.
func TestBatchAppendSuccess(t *testing.T) {
	s := newStream("batch")
	b := openBatch(t, nil)
	first := evs(3, "Batched")
	first[2].ContentType = esdb.ContentTypeBinary
	first[2].Data = []byte{0, 1, 2, 0xff}
	id := uuid.New()
	b.send(t, batchReq(id, batchOptions(s, esdb.NoStream{}), first, true))
	a := b.await(t, id)
	ok := successOf(t, a)
	if uuidOf(a.GetCorrelationId()) != id || string(a.GetStreamIdentifier().GetStreamName()) != s {
		t.Fatalf("answer names correlation %v stream %q, want %v %q", uuidOf(a.GetCorrelationId()), a.GetStreamIdentifier().GetStreamName(), id, s)
	}
	if ok.GetCurrentRevision() != 2 || ok.GetNoStream() != nil {
		t.Fatalf("current revision = %v, want 2", ok.GetCurrentRevisionOption())
	}
	pos := ok.GetPosition()
	if pos == nil {
		t.Fatalf("success has no position: %v", ok)
	}
	more := evs(2, "More")
	ok2 := successOf(t, b.append(t, s, esdb.Revision(2), more...))
	if ok2.GetCurrentRevision() != 4 || ok2.GetPosition().GetCommitPosition() <= pos.GetCommitPosition() {
		t.Fatalf("second append: revision %d position %v, want 4 after %v", ok2.GetCurrentRevision(), ok2.GetPosition(), pos)
	}

	got := streamEvents(t, s)
	want := append(first, more...)
	if !slices.Equal(ids(got), dataIDs(want)) || !slices.Equal(revisions(got), []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("read %v at %v, want %v at 0..4", ids(got), revisions(got), dataIDs(want))
	}
	for i, e := range got {
		r, w := e.OriginalEvent(), want[i]
		if r.EventType != w.EventType || r.ContentType != contentType(w) || !bytes.Equal(r.Data, w.Data) || !bytes.Equal(r.UserMetadata, w.Metadata) {
			t.Errorf("event %d = {%s %s %q %q}, want {%s %s %q %q}", i, r.EventType, r.ContentType, r.Data, r.UserMetadata, w.EventType, contentType(w), w.Data, w.Metadata)
		}
	}
	if last := got[2].OriginalEvent().Position; last.Commit != pos.GetCommitPosition() || last.Prepare != pos.GetPreparePosition() {
		t.Errorf("answer position %v, the third event is at %v", pos, last)
	}
}

func contentType(e esdb.EventData) string {
	if e.ContentType == esdb.ContentTypeJson {
		return "application/json"
	}
	return "application/octet-stream"
}

// TestBatchAppendChunked: a request split over several messages of one
// correlation id is written once, atomically, at is_final: nothing is
// readable before, all of it after, contiguous in $all. Options on a later
// chunk are ignored (the first ones count).
func TestBatchAppendChunked(t *testing.T) {
	s := newStream("batchchunk")
	b := openBatch(t, nil)
	id := uuid.New()
	chunks := [][]esdb.EventData{evs(2, "C0"), evs(2, "C1"), evs(2, "C2")}
	b.send(t, batchReq(id, batchOptions(s, esdb.NoStream{}), chunks[0], false))
	b.send(t, batchReq(id, batchOptions(s, esdb.Revision(99)), chunks[1], false))
	// Another complete append on the same call: once it is answered, the
	// server has processed the chunks sent before it.
	successOf(t, b.append(t, newStream("batchbarrier"), esdb.Any{}, evs(1, "Barrier")...))
	if got := streamEvents(t, s); len(got) != 0 {
		t.Fatalf("before is_final %s has %d events, want none", s, len(got))
	}
	if n := len(b.answers(id)); n != 0 {
		t.Fatalf("%d answers before is_final, want none", n)
	}
	b.send(t, batchReq(id, nil, chunks[2], true))
	ok := successOf(t, b.await(t, id))
	if ok.GetCurrentRevision() != 5 {
		t.Fatalf("current revision = %v, want 5", ok.GetCurrentRevisionOption())
	}
	want := slices.Concat(chunks...)
	got := streamEvents(t, s)
	if !slices.Equal(ids(got), dataIDs(want)) {
		t.Fatalf("read %v, want %v", ids(got), dataIDs(want))
	}
	first := got[0].OriginalEvent().Position
	all, err := db.ReadAll(ctx(t), esdb.ReadAllOptions{From: first}, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	for i := range want {
		e, err := all.Recv()
		if err != nil {
			t.Fatalf("$all from %v, event %d: %v", first, i, err)
		}
		if e.OriginalEvent().StreamID != s || e.OriginalEvent().EventID != want[i].EventID {
			t.Fatalf("$all from %v, event %d is %s/%v, want %s/%v: the batch is not contiguous", first, i, e.OriginalEvent().StreamID, e.OriginalEvent().EventID, s, want[i].EventID)
		}
	}
}

// TestBatchAppendWrongExpectedVersion: a failed expectation is answered
// AlreadyExists with a WrongExpectedVersion detail naming the current and
// the expected revision, and writes nothing.
func TestBatchAppendWrongExpectedVersion(t *testing.T) {
	existing := newStream("batchwev")
	appendOK(t, existing, esdb.NoStream{}, evs(2, "Prepared")...)
	missing := newStream("batchwev")
	cases := []struct {
		name, stream string
		exp          esdb.ExpectedRevision
		check        func(*shared.WrongExpectedVersion) bool
	}{
		{"ahead", existing, esdb.Revision(5), func(w *shared.WrongExpectedVersion) bool {
			return w.GetCurrentStreamRevision() == 1 && w.GetCurrentNoStream() == nil && w.GetExpectedStreamPosition() == 5 &&
				w.GetExpectedAny() == nil && w.GetExpectedNoStream() == nil && w.GetExpectedStreamExists() == nil
		}},
		{"behind", existing, esdb.Revision(0), func(w *shared.WrongExpectedVersion) bool {
			return w.GetCurrentStreamRevision() == 1 && w.GetExpectedStreamPosition() == 0 &&
				w.GetExpectedStreamPositionOption() != nil && w.GetExpectedAny() == nil
		}},
		{"no_stream on existing", existing, esdb.NoStream{}, func(w *shared.WrongExpectedVersion) bool {
			return w.GetCurrentStreamRevision() == 1 && w.GetExpectedNoStream() != nil
		}},
		{"stream_exists on missing", missing, esdb.StreamExists{}, func(w *shared.WrongExpectedVersion) bool {
			return w.GetCurrentNoStream() != nil && w.GetExpectedStreamExists() != nil
		}},
		{"revision on missing", missing, esdb.Revision(0), func(w *shared.WrongExpectedVersion) bool {
			return w.GetCurrentNoStream() != nil && w.GetExpectedStreamPosition() == 0 && w.GetExpectedStreamPositionOption() != nil
		}},
	}
	b := openBatch(t, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := b.append(t, tc.stream, tc.exp, evs(1, "Rejected")...)
			st := errorOf(t, a, codes.AlreadyExists)
			if w := detailOf[*shared.WrongExpectedVersion](t, st); !tc.check(w) {
				t.Fatalf("detail %v does not match", w)
			}
			if string(a.GetStreamIdentifier().GetStreamName()) != tc.stream {
				t.Fatalf("answer names stream %q, want %q", a.GetStreamIdentifier().GetStreamName(), tc.stream)
			}
		})
	}
	if n := len(streamEvents(t, existing)); n != 2 {
		t.Errorf("%s has %d events, want the 2 prepared", existing, n)
	}
	if n := len(streamEvents(t, missing)); n != 0 {
		t.Errorf("%s has %d events, want none", missing, n)
	}
}

// TestBatchAppendIdempotent: re-sending the same event ids at the same
// expected revision (or with any) succeeds with the original revision and
// writes nothing, as Append does.
func TestBatchAppendIdempotent(t *testing.T) {
	for _, exp := range []esdb.ExpectedRevision{esdb.NoStream{}, esdb.Any{}} {
		t.Run(fmt.Sprintf("%T", exp), func(t *testing.T) {
			s := newStream("batchidem")
			b := openBatch(t, nil)
			events := evs(2, "Once")
			ok := successOf(t, b.append(t, s, exp, events...))
			again := successOf(t, b.append(t, s, exp, events...))
			if ok.GetCurrentRevision() != 1 || again.GetCurrentRevision() != 1 {
				t.Fatalf("revisions %d then %d, want 1 both times", ok.GetCurrentRevision(), again.GetCurrentRevision())
			}
			if got := streamEvents(t, s); !slices.Equal(ids(got), dataIDs(events)) {
				t.Fatalf("read %v, want %v once", ids(got), dataIDs(events))
			}
		})
	}
}

// TestBatchAppendPipelined: 1,000 one-event appends to 200 streams on one
// call, up to 100 in flight, are each answered exactly once, and each
// stream holds its events in the order the requests were sent (revision k
// for the stream's k-th request).
func TestBatchAppendPipelined(t *testing.T) {
	const nStreams, perStream, window = 200, 5, 100
	names := make([]string, nStreams)
	for i := range names {
		names[i] = newStream("batchpipe")
	}
	type sent struct {
		stream string
		k      int
		event  esdb.EventData
	}
	var reqs []sent
	for k := range perStream {
		for _, s := range names {
			reqs = append(reqs, sent{s, k, evs(1, "Piped")[0]})
		}
	}
	b := openBatch(t, nil)
	idOf := make([]uuid.UUID, len(reqs))
	for i, r := range reqs {
		// Keep at most window requests unanswered.
		b.waitFor(t, "room in the window", func() bool { return i-len(b.arrived) < window })
		idOf[i] = uuid.New()
		b.send(t, batchReq(idOf[i], batchOptions(r.stream, esdb.Any{}), []esdb.EventData{r.event}, true))
	}
	b.waitFor(t, "every answer", func() bool { return len(b.arrived) >= len(reqs) })
	for i, r := range reqs {
		as := b.answers(idOf[i])
		if len(as) != 1 {
			t.Fatalf("request %d (%s #%d): %d answers, want 1", i, r.stream, r.k, len(as))
		}
		if ok := successOf(t, as[0]); ok.GetCurrentRevision() != uint64(r.k) {
			t.Fatalf("request %d (%s #%d): revision %d, want %d (applied out of order)", i, r.stream, r.k, ok.GetCurrentRevision(), r.k)
		}
	}
	for s := range names {
		got := streamEvents(t, names[s])
		var want []uuid.UUID
		for _, r := range reqs {
			if r.stream == names[s] {
				want = append(want, r.event.EventID)
			}
		}
		if !slices.Equal(ids(got), want) {
			t.Fatalf("%s = %v, want %v", names[s], ids(got), want)
		}
	}
}

// TestBatchAppendTombstoned: an append to a tombstoned stream is answered
// NotFound with a StreamDeleted detail naming the stream.
func TestBatchAppendTombstoned(t *testing.T) {
	s := prepare(t, stateTombstoned)
	b := openBatch(t, nil)
	for _, exp := range []esdb.ExpectedRevision{esdb.Any{}, esdb.Revision(1)} {
		st := errorOf(t, b.append(t, s, exp, evs(1, "Late")...), codes.NotFound)
		if d := detailOf[*shared.StreamDeleted](t, st); string(d.GetStreamIdentifier().GetStreamName()) != s {
			t.Fatalf("StreamDeleted names %q, want %q", d.GetStreamIdentifier().GetStreamName(), s)
		}
	}
}

// TestBatchAppendTooLarge: more than the 1 MiB default maximum append size
// of data, in one message or over chunks, is answered once with
// InvalidArgument and a MaximumAppendSizeExceeded detail; nothing is written
// and later chunks of that correlation id are ignored.
func TestBatchAppendTooLarge(t *testing.T) {
	big := func(n int) []esdb.EventData {
		e := evs(1, "Big")
		e[0].ContentType, e[0].Data = esdb.ContentTypeBinary, bytes.Repeat([]byte{'x'}, n)
		return e
	}
	b := openBatch(t, nil)
	one, chunked := newStream("batchbig"), newStream("batchbig")
	st := errorOf(t, b.append(t, one, esdb.Any{}, big(1<<20+1)...), codes.InvalidArgument)
	if d := detailOf[*shared.MaximumAppendSizeExceeded](t, st); d.GetMaxAppendSize() != 1<<20 {
		t.Fatalf("max append size = %d, want %d", d.GetMaxAppendSize(), 1<<20)
	}

	id := uuid.New()
	b.send(t, batchReq(id, batchOptions(chunked, esdb.Any{}), big(600<<10), false))
	b.send(t, batchReq(id, nil, big(600<<10), false))
	errorOf(t, b.await(t, id), codes.InvalidArgument)
	b.send(t, batchReq(id, nil, evs(1, "After"), true))
	successOf(t, b.append(t, newStream("batchbarrier"), esdb.Any{}, evs(1, "Barrier")...))
	if n := len(b.answers(id)); n != 1 {
		t.Fatalf("%d answers for the oversized chunked append, want 1", n)
	}
	for _, s := range []string{one, chunked} {
		if n := len(streamEvents(t, s)); n != 0 {
			t.Errorf("%s has %d events, want none", s, n)
		}
	}
}

// TestBatchAppendSubscribeAll: a live $all subscription sees the events of
// batch appends (single and chunked) once each, in order, at the positions
// the answers report.
func TestBatchAppendSubscribeAll(t *testing.T) {
	cat := "batchsub" + strings.ReplaceAll(uuid.NewString(), "-", "")
	sub, err := db.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{
		From:   esdb.End{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{cat + "-"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	b := openBatch(t, nil)
	a, c := newStream(cat), newStream(cat)
	first, second := evs(3, "SubA"), evs(4, "SubC")
	okA := successOf(t, b.append(t, a, esdb.NoStream{}, first...))
	id := uuid.New()
	b.send(t, batchReq(id, batchOptions(c, esdb.NoStream{}), second[:2], false))
	b.send(t, batchReq(id, nil, second[2:], true))
	okC := successOf(t, b.await(t, id))

	r := collect(t, sub, untilEvents(len(first)+len(second)))
	if r.dropped != nil {
		t.Fatalf("subscription dropped: %v", r.dropped.Error)
	}
	want := append(append([]esdb.EventData(nil), first...), second...)
	if !slices.Equal(ids(r.events), dataIDs(want)) {
		t.Fatalf("$all delivered %v, want %v", ids(r.events), dataIDs(want))
	}
	if p := r.events[2].OriginalEvent().Position; p.Commit != okA.GetPosition().GetCommitPosition() {
		t.Errorf("last event of %s at %v, answer said %v", a, p, okA.GetPosition())
	}
	if p := r.events[6].OriginalEvent().Position; p.Commit != okC.GetPosition().GetCommitPosition() {
		t.Errorf("last event of %s at %v, answer said %v", c, p, okC.GetPosition())
	}
}

// TestBatchAppendMalformed: requests the real server rejects. Each bad
// request is answered InvalidArgument with a BadRequest detail and writes
// nothing, except a first message without options, which the real server
// ignores (no answer).
func TestBatchAppendMalformed(t *testing.T) {
	b := openBatch(t, nil)
	ev := func(mut func(*streams.BatchAppendReq_ProposedMessage)) []*streams.BatchAppendReq_ProposedMessage {
		m := proposedMsgs(evs(1, "Bad"))
		mut(m[0])
		return m
	}
	cases := []struct {
		name string
		req  func(id uuid.UUID, s string) *streams.BatchAppendReq
	}{
		{"missing type", func(id uuid.UUID, s string) *streams.BatchAppendReq {
			return &streams.BatchAppendReq{CorrelationId: corrID(id), Options: batchOptions(s, esdb.Any{}), IsFinal: true,
				ProposedMessages: ev(func(m *streams.BatchAppendReq_ProposedMessage) { delete(m.Metadata, "type") })}
		}},
		{"missing content-type", func(id uuid.UUID, s string) *streams.BatchAppendReq {
			return &streams.BatchAppendReq{CorrelationId: corrID(id), Options: batchOptions(s, esdb.Any{}), IsFinal: true,
				ProposedMessages: ev(func(m *streams.BatchAppendReq_ProposedMessage) { delete(m.Metadata, "content-type") })}
		}},
		{"event id not a UUID", func(id uuid.UUID, s string) *streams.BatchAppendReq {
			return &streams.BatchAppendReq{CorrelationId: corrID(id), Options: batchOptions(s, esdb.Any{}), IsFinal: true,
				ProposedMessages: ev(func(m *streams.BatchAppendReq_ProposedMessage) {
					m.Id = &shared.UUID{Value: &shared.UUID_String_{String_: "not-a-uuid"}}
				})}
		}},
		{"no expected position", func(id uuid.UUID, s string) *streams.BatchAppendReq {
			o := batchOptions(s, esdb.Any{})
			o.ExpectedStreamPosition = nil
			return &streams.BatchAppendReq{CorrelationId: corrID(id), Options: o, IsFinal: true, ProposedMessages: proposedMsgs(evs(1, "Bad"))}
		}},
		{"no stream identifier", func(id uuid.UUID, s string) *streams.BatchAppendReq {
			o := batchOptions(s, esdb.Any{})
			o.StreamIdentifier = nil
			return &streams.BatchAppendReq{CorrelationId: corrID(id), Options: o, IsFinal: true, ProposedMessages: proposedMsgs(evs(1, "Bad"))}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, id := newStream("batchbad"), uuid.New()
			b.send(t, tc.req(id, s))
			st := errorOf(t, b.await(t, id), codes.InvalidArgument)
			detailOf[*shared.BadRequest](t, st)
			if n := len(streamEvents(t, s)); n != 0 {
				t.Fatalf("%s has %d events, want none", s, n)
			}
		})
	}
	t.Run("no options", func(t *testing.T) {
		s, ignored := newStream("batchbad"), uuid.New()
		b.mu.Lock()
		before := len(b.arrived)
		b.mu.Unlock()
		b.send(t, batchReq(ignored, nil, evs(1, "Orphan"), true))
		barrier := uuid.New()
		b.send(t, batchReq(barrier, batchOptions(newStream("batchbarrier"), esdb.Any{}), evs(1, "Barrier"), true))
		b.await(t, barrier)
		b.mu.Lock()
		next := b.arrived[before]
		b.mu.Unlock()
		if got := uuidOf(next.GetCorrelationId()); got != barrier {
			t.Fatalf("first answer after the option-less request is for %v, want %v (the option-less one is ignored)", got, barrier)
		}
		if n := len(streamEvents(t, s)); n != 0 {
			t.Fatalf("%s has %d events, want none", s, n)
		}
	})
}

// TestBatchAppendDeadline: a deadline already passed (duration 0, or a
// timestamp in the past) is answered Timeout at once; an incomplete request
// whose deadline passes is answered Timeout once, writes nothing, and its
// late final chunk is ignored.
func TestBatchAppendDeadline(t *testing.T) {
	b := openBatch(t, nil)
	for name, set := range map[string]func(*streams.BatchAppendReq_Options){
		"duration 0": func(o *streams.BatchAppendReq_Options) {
			o.DeadlineOption = &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(0)}
		},
		"timestamp in the past": func(o *streams.BatchAppendReq_Options) {
			o.DeadlineOption = &streams.BatchAppendReq_Options_Deadline_21_10_0{Deadline_21_10_0: timestamppb.New(time.Now().Add(-time.Second))}
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, id := newStream("batchdeadline"), uuid.New()
			o := batchOptions(s, esdb.Any{})
			set(o)
			b.send(t, batchReq(id, o, evs(1, "Late"), true))
			detailOf[*shared.Timeout](t, errorOf(t, b.await(t, id), codes.DeadlineExceeded))
			if n := len(streamEvents(t, s)); n != 0 {
				t.Fatalf("%s has %d events, want none", s, n)
			}
		})
	}
	t.Run("incomplete", func(t *testing.T) {
		s, id := newStream("batchdeadline"), uuid.New()
		o := batchOptions(s, esdb.Any{})
		o.DeadlineOption = &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(50 * time.Millisecond)}
		b.send(t, batchReq(id, o, evs(1, "Never"), false))
		detailOf[*shared.Timeout](t, errorOf(t, b.await(t, id), codes.DeadlineExceeded))
		b.send(t, batchReq(id, nil, evs(1, "TooLate"), true))
		successOf(t, b.append(t, newStream("batchbarrier"), esdb.Any{}, evs(1, "Barrier")...))
		if n := len(b.answers(id)); n != 1 {
			t.Fatalf("%d answers for the expired request, want 1", n)
		}
		if n := len(streamEvents(t, s)); n != 0 {
			t.Fatalf("%s has %d events, want none", s, n)
		}
	})
}

// TestBatchAppendEmpty: a request with no events is answered success with
// the stream's current revision (no_stream for a new stream) and writes
// nothing, as an empty Append is.
func TestBatchAppendEmpty(t *testing.T) {
	b := openBatch(t, nil)
	s := newStream("batchempty")
	if ok := successOf(t, b.append(t, s, esdb.NoStream{})); ok.GetNoStream() == nil {
		t.Fatalf("empty append to a new stream: %v, want no_stream", ok.GetCurrentRevisionOption())
	}
	appendOK(t, s, esdb.NoStream{}, evs(2, "Prepared")...)
	if ok := successOf(t, b.append(t, s, esdb.Revision(1))); ok.GetCurrentRevision() != 1 || ok.GetNoStream() != nil {
		t.Fatalf("empty append at revision 1: %v, want current revision 1", ok.GetCurrentRevisionOption())
	}
	if n := len(streamEvents(t, s)); n != 2 {
		t.Fatalf("%s has %d events, want 2", s, n)
	}
}
