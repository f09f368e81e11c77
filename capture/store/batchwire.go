package store

import (
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// A BatchAppend request is encoded by hand: building the generated
// streams.BatchAppendReq (a map of two entries per event) and marshalling
// it through reflection was 17% of the appender's CPU in test/bench. The
// bytes are those of proto.Marshal of the same message up to the order of
// map entries (which proto leaves unspecified); a table test and a fuzz
// target decode them with proto.Unmarshal and compare with proto.Equal.
//
// Field numbers, from protos/streams.proto and protos/shared.proto:
//
//	BatchAppendReq   1 correlation_id UUID, 2 options Options,
//	                 3 proposed_messages repeated ProposedMessage, 4 is_final bool
//	Options          1 stream_identifier StreamIdentifier; oneof 2 stream_position
//	                 uint64 | 3 no_stream Empty | 4 any Empty | 5 stream_exists Empty;
//	                 7 deadline Duration
//	ProposedMessage  1 id UUID, 2 metadata map<string,string>, 3 custom_metadata bytes, 4 data bytes
//	UUID             oneof 1 structured {1 most_significant_bits int64, 2 least_significant_bits int64}
//	StreamIdentifier 3 stream_name bytes
//	Duration         1 seconds int64, 2 nanos int32

// rawRequest is an encoded BatchAppendReq; batchCodec sends it as is.
type rawRequest []byte

// batchCodec is the "proto" codec of the BatchAppend call: requests are
// rawRequest, answers are decoded by proto.Unmarshal.
type batchCodec struct{}

func (batchCodec) Name() string { return "proto" }

func (batchCodec) Marshal(v any) ([]byte, error) {
	switch m := v.(type) {
	case *rawRequest:
		return *m, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("store: BatchAppend codec cannot marshal %T", v)
}

func (batchCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("store: BatchAppend codec cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

// deadlineSeconds is each request's deadline option; the server bounds it
// by its own write timeout.
const deadlineSeconds = 10

// deadlineSize is the size of the Duration message {seconds: deadlineSeconds}.
var deadlineSize = protowire.SizeTag(1) + protowire.SizeVarint(deadlineSeconds)

// encodeBatchRequest encodes one final BatchAppendReq.
func encodeBatchRequest(id uuid.UUID, stream string, expected esdb.ExpectedRevision, events []esdb.EventData) rawRequest {
	optSize := sizeField(1, sizeStreamName(stream)) + sizeExpected(expected) + sizeField(7, deadlineSize)
	size := sizeField(1, sizeUUID(id)) + sizeField(2, optSize) + protowire.SizeTag(4) + 1
	for i := range events {
		size += sizeField(3, sizeEvent(&events[i]))
	}
	b := make([]byte, 0, size)
	b = appendUUIDField(b, 1, id)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(optSize))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeStreamName(stream)))
	if stream != "" {
		b = appendBytesField(b, 3, stream)
	}
	switch e := expected.(type) {
	case esdb.StreamRevision:
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, e.Value)
	default:
		b = protowire.AppendTag(b, expectedField(expected), protowire.BytesType)
		b = protowire.AppendVarint(b, 0)
	}
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(deadlineSize))
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, deadlineSeconds)
	for i := range events {
		ev := &events[i]
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeEvent(ev)))
		b = appendUUIDField(b, 1, ev.EventID)
		ct := contentType(ev.ContentType)
		b = appendMapEntry(b, 2, "type", ev.EventType)
		b = appendMapEntry(b, 2, "content-type", ct)
		if len(ev.Metadata) > 0 {
			b = appendBytesField(b, 3, ev.Metadata)
		}
		if len(ev.Data) > 0 {
			b = appendBytesField(b, 4, ev.Data)
		}
	}
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	return b
}

// sizeStreamName is the size of StreamIdentifier's content (proto3 omits
// an empty name).
func sizeStreamName(stream string) int {
	if stream == "" {
		return 0
	}
	return sizeField(3, len(stream))
}

// expectedField is the Options oneof field of a non-numeric expected revision.
func expectedField(e esdb.ExpectedRevision) protowire.Number {
	switch e.(type) {
	case esdb.NoStream:
		return 3
	case esdb.StreamExists:
		return 5
	}
	return 4 // any
}

func sizeExpected(e esdb.ExpectedRevision) int {
	if r, ok := e.(esdb.StreamRevision); ok {
		return protowire.SizeTag(2) + protowire.SizeVarint(r.Value)
	}
	return sizeField(expectedField(e), 0)
}

// sizeField is the size of a length-delimited field with n bytes of content.
func sizeField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func sizeEvent(ev *esdb.EventData) int {
	n := sizeField(1, sizeUUID(ev.EventID))
	n += sizeField(2, sizeMapEntry("type", ev.EventType))
	n += sizeField(2, sizeMapEntry("content-type", contentType(ev.ContentType)))
	if len(ev.Metadata) > 0 {
		n += sizeField(3, len(ev.Metadata))
	}
	if len(ev.Data) > 0 {
		n += sizeField(4, len(ev.Data))
	}
	return n
}

func uuidBits(id uuid.UUID) (most, least uint64) {
	m, l := esdb.UUIDAsInt64(id)
	return uint64(m), uint64(l)
}

// uuidInner is the size of UUID.Structured's content.
func uuidInner(id uuid.UUID) int {
	most, least := uuidBits(id)
	n := 0
	if most != 0 {
		n += protowire.SizeTag(1) + protowire.SizeVarint(most)
	}
	if least != 0 {
		n += protowire.SizeTag(2) + protowire.SizeVarint(least)
	}
	return n
}

// sizeUUID is the size of a UUID message's content: the structured oneof
// case, present even when empty.
func sizeUUID(id uuid.UUID) int { return sizeField(1, uuidInner(id)) }

func appendUUIDField(b []byte, num protowire.Number, id uuid.UUID) []byte {
	most, least := uuidBits(id)
	inner := uuidInner(id)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeField(1, inner)))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	if most != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, most)
	}
	if least != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, least)
	}
	return b
}

// Map entries carry key and value even when empty, as proto.Marshal writes them.
func sizeMapEntry(k, v string) int {
	return sizeField(1, len(k)) + sizeField(2, len(v))
}

func appendMapEntry(b []byte, num protowire.Number, k, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeMapEntry(k, v)))
	b = appendBytesField(b, 1, k)
	return appendBytesField(b, 2, v)
}

func appendBytesField[T string | []byte](b []byte, num protowire.Number, v T) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(v)))
	return append(b, v...)
}
