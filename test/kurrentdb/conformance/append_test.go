package conformance_test

import (
	"slices"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
)

// streamState prepares a stream in one of the states the expected-revision
// rules distinguish and returns its name.
type streamState string

const (
	stateNew         streamState = "new"
	stateExisting    streamState = "existing"     // revisions 0 and 1
	stateSoftDeleted streamState = "soft-deleted" // revisions 0 and 1, then deleted
	stateTombstoned  streamState = "tombstoned"   // revisions 0 and 1, then tombstoned
)

func prepare(t *testing.T, state streamState) string {
	t.Helper()
	s := newStream("exp")
	if state == stateNew {
		return s
	}
	appendOK(t, s, esdb.NoStream{}, evs(2, "Prepared")...)
	switch state {
	case stateSoftDeleted:
		if _, err := db.DeleteStream(ctx(t), s, esdb.DeleteStreamOptions{}); err != nil {
			t.Fatalf("soft delete %s: %v", s, err)
		}
	case stateTombstoned:
		if _, err := db.TombstoneStream(ctx(t), s, esdb.TombstoneStreamOptions{}); err != nil {
			t.Fatalf("tombstone %s: %v", s, err)
		}
	}
	return s
}

// TestExpectedRevision checks every expected-revision variant against a new,
// an existing, a soft-deleted and a tombstoned stream: success with the
// right next revision, wrong expected version, or stream deleted.
func TestExpectedRevision(t *testing.T) {
	const wev, deleted = esdb.ErrorCodeWrongExpectedVersion, esdb.ErrorCodeStreamDeleted
	type outcome struct {
		next uint64 // when code == -1
		code esdb.ErrorCode
	}
	ok := func(next uint64) outcome { return outcome{next: next, code: -1} }
	fail := func(c esdb.ErrorCode) outcome { return outcome{code: c} }
	cases := []struct {
		name string
		exp  esdb.ExpectedRevision
		want map[streamState]outcome
	}{
		{"any", esdb.Any{}, map[streamState]outcome{
			stateNew: ok(0), stateExisting: ok(2), stateSoftDeleted: ok(2), stateTombstoned: fail(deleted)}},
		{"no_stream", esdb.NoStream{}, map[streamState]outcome{
			stateNew: ok(0), stateExisting: fail(wev), stateSoftDeleted: ok(2), stateTombstoned: fail(deleted)}},
		{"stream_exists", esdb.StreamExists{}, map[streamState]outcome{
			stateNew: fail(wev), stateExisting: ok(2), stateSoftDeleted: fail(deleted), stateTombstoned: fail(deleted)}},
		{"revision 0 (behind)", esdb.Revision(0), map[streamState]outcome{
			stateNew: fail(wev), stateExisting: fail(wev), stateSoftDeleted: fail(wev), stateTombstoned: fail(deleted)}},
		{"revision 1 (current)", esdb.Revision(1), map[streamState]outcome{
			stateNew: fail(wev), stateExisting: ok(2), stateSoftDeleted: ok(2), stateTombstoned: fail(deleted)}},
		{"revision 5 (ahead)", esdb.Revision(5), map[streamState]outcome{
			stateNew: fail(wev), stateExisting: fail(wev), stateSoftDeleted: fail(wev), stateTombstoned: fail(deleted)}},
	}
	for _, tc := range cases {
		for _, state := range []streamState{stateNew, stateExisting, stateSoftDeleted, stateTombstoned} {
			t.Run(tc.name+"/"+string(state), func(t *testing.T) {
				s := prepare(t, state)
				want := tc.want[state]
				res, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: tc.exp}, evs(1, "Tried")...)
				if want.code != -1 {
					if codeOf(err) != want.code {
						t.Fatalf("append: err = %v (code %d), want code %d", err, codeOf(err), want.code)
					}
					return
				}
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if res.NextExpectedVersion != want.next {
					t.Fatalf("next expected version = %d, want %d", res.NextExpectedVersion, want.next)
				}
				got, err := readStream(t, s, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
				if err != nil || len(got) != 1 || got[0].OriginalEvent().EventNumber != want.next {
					t.Fatalf("last event after append: %v %v, want revision %d", revisions(got), err, want.next)
				}
			})
		}
	}
}

// TestIdempotentAppendExactRevision: re-sending an append with the same ids
// and the same exact expected revision succeeds without writing, whole or as
// a prefix; a different id at any place is a wrong expected version.
func TestIdempotentAppendExactRevision(t *testing.T) {
	s := newStream("idem")
	batch := evs(3, "Once")
	first := appendOK(t, s, esdb.NoStream{}, batch...)

	again := appendOK(t, s, esdb.NoStream{}, batch...)
	if again.NextExpectedVersion != 2 || again.CommitPosition != first.CommitPosition {
		t.Errorf("full retry = rev %d pos %d, want rev 2 pos %d", again.NextExpectedVersion, again.CommitPosition, first.CommitPosition)
	}
	prefix := appendOK(t, s, esdb.NoStream{}, batch[:2]...)
	if prefix.NextExpectedVersion != 1 {
		t.Errorf("prefix retry = rev %d, want 1", prefix.NextExpectedVersion)
	}
	middle := appendOK(t, s, esdb.Revision(0), batch[1:]...)
	if middle.NextExpectedVersion != 2 || middle.CommitPosition != first.CommitPosition {
		t.Errorf("retry from revision 0 = rev %d pos %d, want rev 2 pos %d", middle.NextExpectedVersion, middle.CommitPosition, first.CommitPosition)
	}
	for name, events := range map[string][]esdb.EventData{
		"first differs":  append(evs(1, "Other"), batch[1:]...),
		"later differs":  {batch[0], evs(1, "Other")[0]},
		"longer":         append(slices.Clone(batch), evs(1, "Other")...),
		"no events":      nil,
		"all different ": evs(3, "Other"),
	} {
		_, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events...)
		if codeOf(err) != esdb.ErrorCodeWrongExpectedVersion {
			t.Errorf("%s: err = %v, want wrong expected version", name, err)
		}
	}
	got, err := readStream(t, s, esdb.ReadStreamOptions{}, 100)
	if err != nil || !slices.Equal(ids(got), dataIDs(batch)) {
		t.Fatalf("stream after retries = %v (%v), want exactly the first batch %v", ids(got), err, dataIDs(batch))
	}
}

// TestIdempotentAppendAny: with expected any, a retry whose ids were all
// just written succeeds without writing; a partial match (first id known, a
// later one not) is a wrong expected version; unknown ids append.
func TestIdempotentAppendAny(t *testing.T) {
	s := newStream("idemany")
	batch := evs(2, "Once")
	first := appendOK(t, s, esdb.Any{}, batch...)
	again := appendOK(t, s, esdb.Any{}, batch...)
	if again.NextExpectedVersion != 1 || again.CommitPosition != first.CommitPosition {
		t.Errorf("retry = rev %d pos %d, want rev 1 pos %d", again.NextExpectedVersion, again.CommitPosition, first.CommitPosition)
	}
	_, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, batch[0], evs(1, "New")[0])
	if codeOf(err) != esdb.ErrorCodeWrongExpectedVersion {
		t.Errorf("partial match: err = %v, want wrong expected version", err)
	}
	more := evs(1, "New")
	if res := appendOK(t, s, esdb.Any{}, more...); res.NextExpectedVersion != 2 {
		t.Errorf("new id appended at %d, want 2", res.NextExpectedVersion)
	}
	got, err := readStream(t, s, esdb.ReadStreamOptions{}, 100)
	if want := append(dataIDs(batch), dataIDs(more)...); err != nil || !slices.Equal(ids(got), want) {
		t.Fatalf("stream = %v (%v), want %v", ids(got), err, want)
	}
}

// TestAppendEmptyBatch: zero events to a new stream succeed and create nothing.
func TestAppendEmptyBatch(t *testing.T) {
	s := newStream("empty")
	if _, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}); err != nil {
		t.Fatalf("empty append: %v", err)
	}
	if _, err := readStream(t, s, esdb.ReadStreamOptions{}, 10); codeOf(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("read after empty append: err = %v, want not found", err)
	}
}

// TestMaxAppendSize: an append whose events carry more than 1 MiB of data in
// total fails (the client maps InvalidArgument to Unknown) and writes
// nothing; one just under the limit succeeds.
func TestMaxAppendSize(t *testing.T) {
	s := newStream("big")
	big := evs(2, "Big")
	for i := range big {
		big[i].ContentType = esdb.ContentTypeBinary
		big[i].Data = make([]byte, 600<<10)
	}
	_, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{}, big...)
	if codeOf(err) != esdb.ErrorCodeUnknown || grpcCode(err) != "InvalidArgument" {
		t.Fatalf("1.2 MiB append: err = %v (code %d, grpc %s), want Unknown/InvalidArgument", err, codeOf(err), grpcCode(err))
	}
	if _, err := readStream(t, s, esdb.ReadStreamOptions{}, 10); codeOf(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("read after rejected append: err = %v, want not found", err)
	}
	appendOK(t, s, esdb.NoStream{}, big[0])
}

// TestContentTypeReadsBackAsJSONOrBinary: the server keeps only whether an
// event is JSON, i.e. its content type was exactly "application/json"
// (Streams.Append.cs and Streams.BatchAppend.cs: IsJson = contentType ==
// "application/json"), and reads every other content type back as
// application/octet-stream (Streams.Read.cs ConvertToRecordedEvent), on
// both append paths.
func TestContentTypeReadsBackAsJSONOrBinary(t *testing.T) {
	written := []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "text/plain", "application/octet-stream", ""}
	want := []string{"application/json", "application/octet-stream", "application/octet-stream", "application/octet-stream", "application/octet-stream", "application/octet-stream"}
	check := func(t *testing.T, s string) {
		t.Helper()
		got := streamEvents(t, s)
		var types []string
		for _, e := range got {
			types = append(types, e.OriginalEvent().ContentType)
		}
		if !slices.Equal(types, want) {
			t.Fatalf("content types read back %q, want %q (written %q)", types, want, written)
		}
	}
	t.Run("Append", func(t *testing.T) {
		s := newStream("ctype")
		var events []rawEvent
		for _, ct := range written {
			events = append(events, rawEvent{id: uuid.New(), metadata: map[string]string{"type": "Typed", "content-type": ct}, data: []byte(`{"a":1}`)})
		}
		if r := rawAppend(t, s, events...); r.err != nil || r.resp.GetSuccess() == nil {
			t.Fatalf("append: %v %v", r.err, r.resp)
		}
		check(t, s)
	})
	t.Run("BatchAppend", func(t *testing.T) {
		s := newStream("ctype")
		var msgs []*streams.BatchAppendReq_ProposedMessage
		for _, ct := range written {
			msgs = append(msgs, &streams.BatchAppendReq_ProposedMessage{
				Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
				Metadata: map[string]string{"type": "Typed", "content-type": ct}, Data: []byte(`{"a":1}`)})
		}
		b := openBatch(t, nil)
		id := uuid.New()
		b.send(t, &streams.BatchAppendReq{CorrelationId: corrID(id), Options: batchOptions(s, esdb.NoStream{}), ProposedMessages: msgs, IsFinal: true})
		successOf(t, b.await(t, id))
		check(t, s)
	})
}

// TestMissingMetadataPropertyAnswer: a proposed event without "type" or
// "content-type" is refused with InvalidArgument, the real text naming the
// first property missing ("type" is checked first), and the
// missing-required-metadata-property trailers (Streams.Append.cs,
// RpcExceptions.cs RequiredMetadataPropertyMissing, Constants.cs).
func TestMissingMetadataPropertyAnswer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		metadata map[string]string
		missing  string
	}{
		{"no type", map[string]string{"content-type": "application/json"}, "type"},
		{"no content-type", map[string]string{"type": "T"}, "content-type"},
		{"neither", map[string]string{}, "type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream("nometa")
			r := rawAppend(t, s, rawJSON("Fine", `{}`), rawEvent{id: uuid.New(), metadata: tc.metadata, data: []byte(`{}`)})
			st := statusOf(r.err)
			if want := "Required Metadata Property '" + tc.missing + "' is missing"; st.Code() != codes.InvalidArgument || st.Message() != want {
				t.Fatalf("status %v %q, want InvalidArgument %q", st.Code(), st.Message(), want)
			}
			if trailer(t, r.trailer, "exception") != "missing-required-metadata-property" || trailer(t, r.trailer, "required-metadata-properties") != "type,content-type" {
				t.Fatalf("trailers = %v", r.trailer)
			}
			if n := len(streamEvents(t, s)); n != 0 {
				t.Fatalf("%s holds %d events", s, n)
			}
		})
	}
}
