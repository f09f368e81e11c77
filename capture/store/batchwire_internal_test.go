package store

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// referenceRequest builds the request with the generated types: what
// encodeBatchRequest's bytes must decode to.
func referenceRequest(id uuid.UUID, stream string, expected esdb.ExpectedRevision, events []esdb.EventData) *streams.BatchAppendReq {
	protoUUID := func(id uuid.UUID) *shared.UUID {
		most, least := esdb.UUIDAsInt64(id)
		return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}}
	}
	req := &streams.BatchAppendReq{
		CorrelationId: protoUUID(id),
		Options: &streams.BatchAppendReq_Options{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
			DeadlineOption:   &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(deadlineSeconds * time.Second)},
		},
		IsFinal: true,
	}
	switch e := expected.(type) {
	case esdb.StreamRevision:
		req.Options.ExpectedStreamPosition = &streams.BatchAppendReq_Options_StreamPosition{StreamPosition: e.Value}
	case esdb.NoStream:
		req.Options.ExpectedStreamPosition = &streams.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
	case esdb.StreamExists:
		req.Options.ExpectedStreamPosition = &streams.BatchAppendReq_Options_StreamExists{StreamExists: &emptypb.Empty{}}
	default:
		req.Options.ExpectedStreamPosition = &streams.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}
	}
	for _, ev := range events {
		req.ProposedMessages = append(req.ProposedMessages, &streams.BatchAppendReq_ProposedMessage{
			Id:             protoUUID(ev.EventID),
			Metadata:       map[string]string{"type": ev.EventType, "content-type": contentType(ev.ContentType)},
			CustomMetadata: ev.Metadata,
			Data:           ev.Data,
		})
	}
	return req
}

func checkEncoding(t *testing.T, id uuid.UUID, stream string, expected esdb.ExpectedRevision, events []esdb.EventData) {
	t.Helper()
	items := make([]*item, len(events))
	for i, ev := range events {
		items[i] = &item{ev: encodeProposed(ev.EventID, ev.EventType, ev.ContentType, ev.Metadata, ev.Data), id: ev.EventID, typ: ev.EventType}
		// The item's metadata and data are the event's, read back from its bytes.
		if got := items[i].eventData(); string(got.Metadata) != string(ev.Metadata) || string(got.Data) != string(ev.Data) || got.EventID != ev.EventID {
			t.Fatalf("event %d reads back as id %s metadata %q data %q; want %s %q %q", i, got.EventID, got.Metadata, got.Data, ev.EventID, ev.Metadata, ev.Data)
		}
	}
	most, least := uuidBits(id)
	req := newRequest(most, least, stream, expected, items)
	bufs, err := batchCodec{}.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	raw := bufs.Materialize()
	if head := bufs[0].ReadOnlyData(); len(head) != headSize(most, least, stream, expected) {
		t.Fatalf("head of %d bytes, sized %d", len(head), headSize(most, least, stream, expected))
	}
	var got streams.BatchAppendReq
	if err := proto.Unmarshal(raw, &got); err != nil {
		t.Fatalf("proto.Unmarshal of the hand-encoded request: %v", err)
	}
	want := referenceRequest(id, stream, expected, events)
	if !proto.Equal(&got, want) {
		t.Fatalf("hand-encoded request decodes to\n%v\nwant\n%v", &got, want)
	}
	if m, _ := proto.Marshal(want); len(m) != len(raw) {
		t.Fatalf("hand-encoded request is %d bytes, proto.Marshal's %d", len(raw), len(m))
	}
}

func TestBatchRequestEncodingMatchesProto(t *testing.T) {
	ev := func(typ string, data, meta string, ct esdb.ContentType, id uuid.UUID) esdb.EventData {
		e := esdb.EventData{EventID: id, EventType: typ, ContentType: ct}
		if data != "" {
			e.Data = []byte(data)
		}
		if meta != "" {
			e.Metadata = []byte(meta)
		}
		return e
	}
	allOnes := uuid.UUID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	halfZero := uuid.UUID{8: 1}
	for _, c := range []struct {
		name     string
		id       uuid.UUID
		stream   string
		expected esdb.ExpectedRevision
		events   []esdb.EventData
	}{
		{"revision", uuid.New(), "account-42", esdb.Revision(7), []esdb.EventData{ev("AccountOpened", `{"a":1}`, `{"m":2}`, esdb.ContentTypeJson, uuid.New())}},
		{"revision 0", uuid.New(), "account-42", esdb.Revision(0), []esdb.EventData{ev("T", `{}`, "", esdb.ContentTypeJson, uuid.New())}},
		{"largest revision", uuid.New(), "s", esdb.Revision(1<<64 - 1), []esdb.EventData{ev("T", `{}`, "", esdb.ContentTypeJson, uuid.New())}},
		{"no stream", uuid.New(), "order-1", esdb.NoStream{}, []esdb.EventData{ev("A", `1`, `2`, esdb.ContentTypeJson, uuid.New()), ev("B", `3`, `4`, esdb.ContentTypeBinary, uuid.New())}},
		{"any", uuid.New(), "order-1", esdb.Any{}, nil},
		{"stream exists", uuid.New(), "order-1", esdb.StreamExists{}, []esdb.EventData{ev("A", "", "", esdb.ContentTypeJson, uuid.Nil)}},
		{"zero and all-ones ids", uuid.Nil, "x", esdb.NoStream{}, []esdb.EventData{ev("A", "d", "m", esdb.ContentTypeJson, allOnes), ev("B", "d", "m", esdb.ContentTypeJson, halfZero)}},
		{"empty type, long stream and data", uuid.New(), strings.Repeat("s", 300), esdb.Revision(300), []esdb.EventData{ev("", strings.Repeat("d", 70000), strings.Repeat("m", 200), esdb.ContentTypeJson, uuid.New())}},
		{"unicode", uuid.New(), "compte-é-😀", esdb.Revision(1), []esdb.EventData{ev("Événement", `{"é":"😀"}`, `{}`, esdb.ContentTypeJson, uuid.New())}},
	} {
		t.Run(c.name, func(t *testing.T) { checkEncoding(t, c.id, c.stream, c.expected, c.events) })
	}
}

func FuzzBatchRequestEncoding(f *testing.F) {
	f.Add("account-1", "Type", []byte(`{"a":1}`), []byte(`{}`), uint64(3), uint8(0), []byte("0123456789abcdef"), uint8(2))
	f.Add("", "", []byte(nil), []byte(nil), uint64(0), uint8(1), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, stream, typ string, data, meta []byte, rev uint64, kind uint8, idb []byte, n uint8) {
		if !utf8.ValidString(typ) {
			t.Skip("event types are valid UTF-8 (Appender.Add refuses others)")
		}
		var id uuid.UUID
		copy(id[:], idb)
		expected := []esdb.ExpectedRevision{esdb.Revision(rev), esdb.NoStream{}, esdb.Any{}, esdb.StreamExists{}}[kind%4]
		var events []esdb.EventData
		for i := range int(n % 5) {
			eid := id
			eid[i] ^= 0x5a
			events = append(events, esdb.EventData{EventID: eid, EventType: typ, ContentType: esdb.ContentType(i % 2), Data: data, Metadata: meta})
		}
		checkEncoding(t, id, stream, expected, events)
	})
}

// responses are answers as KurrentDB writes them, and others a server may
// write: the hand decoder must read the first kind, and read anything it
// takes as proto.Unmarshal does.
func responses() []*streams.BatchAppendResp {
	id := func(most, least int64) *shared.UUID {
		return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}}
	}
	stream := &shared.StreamIdentifier{StreamName: []byte("bulk-17")}
	pos := &streams.BatchAppendResp_Success_Position{Position: &shared.AllStreamPosition{CommitPosition: 12345, PreparePosition: 12345}}
	return []*streams.BatchAppendResp{
		{CorrelationId: id(-5, 1<<62), Result: &streams.BatchAppendResp_Success_{Success: &streams.BatchAppendResp_Success{
			CurrentRevisionOption: &streams.BatchAppendResp_Success_CurrentRevision{CurrentRevision: 0}, PositionOption: pos}},
			StreamIdentifier: stream, ExpectedStreamPosition: &streams.BatchAppendResp_NoStream{NoStream: &emptypb.Empty{}}},
		{CorrelationId: id(0, 0), Result: &streams.BatchAppendResp_Success_{Success: &streams.BatchAppendResp_Success{
			CurrentRevisionOption: &streams.BatchAppendResp_Success_CurrentRevision{CurrentRevision: 1<<64 - 1},
			PositionOption:        &streams.BatchAppendResp_Success_NoPosition{NoPosition: &emptypb.Empty{}}}},
			ExpectedStreamPosition: &streams.BatchAppendResp_StreamPosition{StreamPosition: 41}},
		{CorrelationId: id(7, 8), Result: &streams.BatchAppendResp_Success_{Success: &streams.BatchAppendResp_Success{
			CurrentRevisionOption: &streams.BatchAppendResp_Success_CurrentRevision{CurrentRevision: 3}}}},
	}
}

// slowOnly are answers the hand decoder leaves to proto.Unmarshal.
func slowOnly() []*streams.BatchAppendResp {
	id := &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: 1, LeastSignificantBits: 2}}}
	return []*streams.BatchAppendResp{
		{CorrelationId: id, Result: &streams.BatchAppendResp_Error{Error: &status.Status{Code: 9, Message: "wrong expected version"}}},
		{CorrelationId: id, Result: &streams.BatchAppendResp_Success_{Success: &streams.BatchAppendResp_Success{
			CurrentRevisionOption: &streams.BatchAppendResp_Success_NoStream{NoStream: &emptypb.Empty{}}}}},
		{CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: "00000000-0000-0001-0000-000000000002"}},
			Result: &streams.BatchAppendResp_Success_{Success: &streams.BatchAppendResp_Success{CurrentRevisionOption: &streams.BatchAppendResp_Success_CurrentRevision{CurrentRevision: 3}}}},
	}
}

func TestBatchResponseDecoding(t *testing.T) {
	for i, m := range responses() {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var r batchResponse
		if !r.fast(b) {
			t.Fatalf("answer %d (%v) is not read by the fast path", i, m)
		}
		checkResponse(t, b)
	}
	for i, m := range slowOnly() {
		b, _ := proto.Marshal(m)
		var r batchResponse
		if r.fast(b) {
			t.Fatalf("answer %d (%v) taken by the fast path; it is not a plain success", i, m)
		}
		if err := r.decode(b); err != nil || !proto.Equal(r.slow, m) {
			t.Fatalf("answer %d: decode gave %v, %v; want the generated message %v", i, r.slow, err, m)
		}
	}
}

// checkResponse fails unless what the fast path reads from b (if it takes
// it) is what proto.Unmarshal reads: a success with the same revision and
// correlation id.
func checkResponse(t *testing.T, b []byte) {
	t.Helper()
	var r batchResponse
	if !r.fast(b) {
		return
	}
	var m streams.BatchAppendResp
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatalf("%x: the fast path read revision %d, proto.Unmarshal fails: %v", b, r.rev, err)
	}
	cur, ok := m.GetSuccess().GetCurrentRevisionOption().(*streams.BatchAppendResp_Success_CurrentRevision)
	s := m.GetCorrelationId().GetStructured()
	if !ok || cur.CurrentRevision != r.rev || s == nil || uint64(s.GetMostSignificantBits()) != r.most || uint64(s.GetLeastSignificantBits()) != r.least {
		t.Fatalf("%x: fast path read id (%d, %d) revision %d; proto.Unmarshal reads %v", b, r.most, r.least, r.rev, &m)
	}
}

// FuzzBatchResponse: whatever bytes the fast path takes, proto.Unmarshal
// takes too and reads alike.
func FuzzBatchResponse(f *testing.F) {
	for _, m := range append(responses(), slowOnly()...) {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkResponse(t, b) })
}

func BenchmarkBatchResponse(b *testing.B) {
	raw, _ := proto.Marshal(responses()[0])
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var r batchResponse
		for b.Loop() {
			if err := r.decode(raw); err != nil || r.slow != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(raw, new(streams.BatchAppendResp)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
