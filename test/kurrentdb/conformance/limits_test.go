package conformance_test

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
)

// The append limits and messages of KurrentDB 24.10.14: Streams.Append.cs
// and Streams.BatchAppend.cs (the checks), Data/Event.cs (SizeOnDisk),
// RpcExceptions.cs and Status.cs (the answers), ClusterVNodeStartup.cs and
// TFConsts.cs (the gRPC receive limit).

const maxAppendSize = 1 << 20 // KurrentDB's default MaxAppendSize

// sized returns an event of type typ and custom metadata meta whose size as
// the server counts it (data + metadata + 2 x UTF-16 length of the type) is
// exactly n bytes.
func sized(typ string, meta []byte, n int) esdb.EventData {
	units := 0
	for _, r := range typ {
		if r >= 0x10000 {
			units += 2
		} else {
			units++
		}
	}
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeBinary,
		Metadata: meta, Data: bytes.Repeat([]byte{'d'}, n-len(meta)-2*units)}
}

// TestAppendSizeCountsMetadataAndType: the append limit (1 MiB by default)
// counts data + custom metadata + 2 x the type's length in UTF-16 code
// units per event, since 24.10.4 (Event.SizeOnDisk): an append of exactly
// 1 MiB so counted is stored, one byte more is refused, on Append (status
// and trailers) and on BatchAppend (MaximumAppendSizeExceeded), though its
// data alone is under 1 MiB.
func TestAppendSizeCountsMetadataAndType(t *testing.T) {
	meta := bytes.Repeat([]byte{'m'}, 2<<10)
	const typ = "Sized\U0001F600" // 7 UTF-16 code units, 9 UTF-8 bytes
	t.Run("Append", func(t *testing.T) {
		s := newStream("sizecount")
		over := sized(typ, meta, maxAppendSize+1)
		_, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{}, over)
		if codeOf(err) != esdb.ErrorCodeUnknown || grpcCode(err) != "InvalidArgument" {
			t.Fatalf("%d data bytes + %d metadata bytes + type %q: err = %v, want Unknown/InvalidArgument", len(over.Data), len(meta), typ, err)
		}
		r := rawAppend(t, s, rawEvent{id: uuid.New(), metadata: map[string]string{"type": typ, "content-type": "application/octet-stream"}, custom: over.Metadata, data: over.Data})
		st := statusOf(r.err)
		if st.Code() != codes.InvalidArgument || st.Message() != "Maximum Append Size of 1048576 Exceeded." {
			t.Fatalf("raw append: status %v %q, want InvalidArgument %q", st.Code(), st.Message(), "Maximum Append Size of 1048576 Exceeded.")
		}
		if trailer(t, r.trailer, "exception") != "maximum-append-size-exceeded" || trailer(t, r.trailer, "maximum-append-size") != "1048576" {
			t.Fatalf("trailers = %v", r.trailer)
		}
		if n := len(streamEvents(t, s)); n != 0 {
			t.Fatalf("%s holds %d events after refused appends", s, n)
		}
		exact := sized(typ, meta, maxAppendSize)
		if _, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{}, exact); err != nil {
			t.Fatalf("an append of exactly %d bytes so counted: %v", maxAppendSize, err)
		}
	})
	t.Run("BatchAppend", func(t *testing.T) {
		s := newStream("sizecount")
		b := openBatch(t, nil)
		half := sized("Half", nil, maxAppendSize/2)
		rest := sized(typ, meta, maxAppendSize/2+1)
		st := errorOf(t, b.append(t, s, esdb.Any{}, half, rest), codes.InvalidArgument)
		if d := detailOf[*shared.MaximumAppendSizeExceeded](t, st); st.GetMessage() != "MaximumAppendSizeExceeded" || d.GetMaxAppendSize() != maxAppendSize {
			t.Fatalf("answer %q max %d, want MaximumAppendSizeExceeded %d", st.GetMessage(), d.GetMaxAppendSize(), maxAppendSize)
		}
		rest = sized(typ, meta, maxAppendSize/2)
		successOf(t, b.append(t, s, esdb.Any{}, half, rest))
		if got := streamEvents(t, s); !slices.Equal(ids(got), []uuid.UUID{half.EventID, rest.EventID}) {
			t.Fatalf("stream = %v, want only the append of exactly 1 MiB", ids(got))
		}
	})
}

// maxEventDetail decodes a MaximumAppendEventSizeExceeded detail (24.10.4+,
// not in the Go client's protos): eventId = 1, proposedEventSize = 2,
// maxAppendEventSize = 3.
func maxEventDetail(t *testing.T, st *rpcstatus.Status) (id string, size, max uint64) {
	t.Helper()
	if len(st.GetDetails()) != 1 || !strings.HasSuffix(st.GetDetails()[0].GetTypeUrl(), "/event_store.client.MaximumAppendEventSizeExceeded") {
		t.Fatalf("details %v, want one event_store.client.MaximumAppendEventSizeExceeded", st.GetDetails())
	}
	for _, f := range wireFields(t, st.GetDetails()[0].GetValue()) {
		switch f.num {
		case 1:
			id = string(f.bytes)
		case 2:
			size = f.varint
		case 3:
			max = f.varint
		}
	}
	return id, size, max
}

// TestMaximumAppendEventSizeAnswer: with a per-event limit set
// (MaxAppendEventSize, 24.10.4+; this suite's server runs with
// maxAppendEventSize), an event over it is refused before the append's total
// is checked: on Append with InvalidArgument, the real text and the
// maximum-append-event-size-exceeded trailers; on BatchAppend with
// InvalidArgument "MaximumAppendEventSizeExceeded" and its detail naming the
// event. Nothing is written. The official Go client reports it as Unknown.
func TestMaximumAppendEventSizeAnswer(t *testing.T) {
	const size = maxAppendEventSize + 1<<10
	small := sized("Small", nil, 1<<10)
	huge := sized("Huge", []byte(`{"m":1}`), size)
	hint := "(is the server running with --max-append-event-size=" + strconv.Itoa(maxAppendEventSize) + "?)"
	t.Run("Append", func(t *testing.T) {
		s := newStream("eventsize")
		if _, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{}, small, huge); codeOf(err) != esdb.ErrorCodeUnknown || grpcCode(err) != "InvalidArgument" {
			t.Fatalf("official client: err = %v, want Unknown/InvalidArgument %s", err, hint)
		}
		ev := rawEvent{id: huge.EventID, metadata: map[string]string{"type": huge.EventType, "content-type": "application/octet-stream"}, custom: huge.Metadata, data: huge.Data}
		r := rawAppend(t, s, rawEvent{id: small.EventID, metadata: map[string]string{"type": small.EventType, "content-type": "application/octet-stream"}, data: small.Data}, ev)
		st := statusOf(r.err)
		suffix := ", Size: " + strconv.Itoa(size) + ", exceeds Maximum Append Event Size of " + strconv.Itoa(maxAppendEventSize) + "."
		if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "Event with Id: ") || !strings.HasSuffix(st.Message(), suffix) {
			t.Fatalf("status %v %q, want InvalidArgument \"Event with Id: ...%s\" %s", st.Code(), st.Message(), suffix, hint)
		}
		want := map[string]string{"exception": "maximum-append-event-size-exceeded",
			"maximum-append-event-size": strconv.Itoa(maxAppendEventSize), "proposed-append-event-size": strconv.Itoa(size)}
		for k, v := range want {
			if got := trailer(t, r.trailer, k); got != v {
				t.Errorf("trailer %s = %q, want %q", k, got, v)
			}
		}
		if id := trailer(t, r.trailer, "event-id"); !strings.Contains(id, huge.EventID.String()) {
			t.Errorf("trailer event-id = %q, want it to name %s", id, huge.EventID)
		}
		if n := len(streamEvents(t, s)); n != 0 {
			t.Fatalf("%s holds %d events", s, n)
		}
	})
	t.Run("BatchAppend", func(t *testing.T) {
		s := newStream("eventsize")
		b := openBatch(t, nil)
		st := errorOf(t, b.append(t, s, esdb.Any{}, small, huge), codes.InvalidArgument)
		if st.GetMessage() != "MaximumAppendEventSizeExceeded" {
			t.Fatalf("message %q, want MaximumAppendEventSizeExceeded %s", st.GetMessage(), hint)
		}
		id, got, max := maxEventDetail(t, st)
		if id != huge.EventID.String() || got != size || max != maxAppendEventSize {
			t.Fatalf("detail = event %s size %d max %d, want %s %d %d", id, got, max, huge.EventID, size, maxAppendEventSize)
		}
		if n := len(streamEvents(t, s)); n != 0 {
			t.Fatalf("%s holds %d events", s, n)
		}
	})
}

// TestReceiveLimitIsSixteenMiB: the Streams service accepts gRPC messages up
// to 16 MiB - 10,000 bytes (ClusterVNodeStartup.cs MaxReceiveMessageSize =
// TFConsts.EffectiveMaxLogRecordSize). Under it, an oversized append is
// answered in the protocol; over it, the call itself fails with
// ResourceExhausted, a BatchAppend call whole, with no answer for the
// request.
func TestReceiveLimitIsSixteenMiB(t *testing.T) {
	const limit = 16<<20 - 10_000
	under, over := limit-10_000, limit+10_000
	bin := func(n int) rawEvent {
		return rawEvent{id: uuid.New(), metadata: map[string]string{"type": "Big", "content-type": "application/octet-stream"}, data: bytes.Repeat([]byte{'b'}, n)}
	}
	t.Run("Append", func(t *testing.T) {
		s := newStream("recvlimit")
		if st := statusOf(rawAppend(t, s, bin(under)).err); st.Code() != codes.InvalidArgument {
			t.Fatalf("a %d-byte event: %v %q, want the InvalidArgument append-size answer", under, st.Code(), st.Message())
		}
		if st := statusOf(rawAppend(t, s, bin(over)).err); st.Code() != codes.ResourceExhausted {
			t.Fatalf("a %d-byte event: %v %q, want ResourceExhausted", over, st.Code(), st.Message())
		}
	})
	t.Run("BatchAppend", func(t *testing.T) {
		b := openBatch(t, nil)
		batchReqOf := func(id uuid.UUID, e rawEvent) *streams.BatchAppendReq {
			return &streams.BatchAppendReq{CorrelationId: corrID(id), Options: batchOptions(newStream("recvlimit"), esdb.Any{}), IsFinal: true,
				ProposedMessages: []*streams.BatchAppendReq_ProposedMessage{{
					Id: &shared.UUID{Value: &shared.UUID_String_{String_: e.id.String()}}, Metadata: e.metadata, Data: e.data}}}
		}
		id := uuid.New()
		b.send(t, batchReqOf(id, bin(under)))
		errorOf(t, b.await(t, id), codes.InvalidArgument)
		big := uuid.New()
		_ = b.call.Send(batchReqOf(big, bin(over))) // may see EOF: the status comes from Recv
		deadline := ctx(t)
		for {
			b.mu.Lock()
			err, ch, answered := b.err, b.changed, len(b.byID[big]) > 0
			b.mu.Unlock()
			if answered {
				t.Fatalf("a %d-byte request was answered in the protocol (%v), want the call to fail with ResourceExhausted", over, b.answers(big)[0].GetError())
			}
			if err != nil {
				if st := statusOf(err); st.Code() != codes.ResourceExhausted {
					t.Fatalf("the call ended with %v %q, want ResourceExhausted", st.Code(), st.Message())
				}
				break
			}
			select {
			case <-ch:
			case <-deadline.Done():
				t.Fatalf("a %d-byte request: the call did not fail (answers: %d)", over, len(b.answers(big)))
			}
		}
		if n := len(b.answers(big)); n != 0 {
			t.Fatalf("%d answers for the oversized request, want none (the call fails)", n)
		}
	})
}
