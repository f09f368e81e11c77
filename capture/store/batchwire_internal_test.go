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
	raw := encodeBatchRequest(id, stream, expected, events)
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
