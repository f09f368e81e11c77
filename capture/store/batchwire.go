package store

import (
	"encoding/binary"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protowire"
)

// A BatchAppend request is encoded by hand: building the generated
// streams.BatchAppendReq (a map of two entries per event) and marshalling
// it through reflection was 17% of the appender's CPU in test/bench. Each
// event is encoded once, when it is queued (encodeProposed: the item keeps
// those bytes, its metadata and data are slices of them), and a request is
// its correlation id and options, its events' bytes and is_final, handed
// to gRPC as those buffers in order, not copied (newRequest). The bytes are those of
// proto.Marshal of the same message up to the order of map entries (which
// proto leaves unspecified); a table test and a fuzz target decode them
// with proto.Unmarshal and compare with proto.Equal.
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

// deadlineSeconds is each request's deadline option; the server bounds it
// by its own write timeout.
const deadlineSeconds = 10

// deadlineSize is the size of the Duration message {seconds: deadlineSeconds}.
var deadlineSize = protowire.SizeTag(1) + protowire.SizeVarint(deadlineSeconds)

// proposed is one event as BatchAppendReq's field 3 (tag, length and the
// ProposedMessage), with where its custom metadata and data lie in it.
type proposed struct {
	b          []byte
	meta, data [2]int32 // [start, end) in b
}

func (p *proposed) metadata() []byte { return p.b[p.meta[0]:p.meta[1]] }
func (p *proposed) payload() []byte  { return p.b[p.data[0]:p.data[1]] }

// encodeProposed encodes one event into a buffer of its exact size.
func encodeProposed(id uuid.UUID, typ string, ct esdb.ContentType, meta, data []byte) proposed {
	most, least := uuidBits(id)
	ctName := contentType(ct)
	inner := sizeField(1, sizeUUID(most, least)) + sizeField(2, sizeMapEntry("type", typ)) + sizeField(2, sizeMapEntry("content-type", ctName))
	if len(meta) > 0 {
		inner += sizeField(3, len(meta))
	}
	if len(data) > 0 {
		inner += sizeField(4, len(data))
	}
	b := make([]byte, 0, sizeField(3, inner))
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = appendUUIDField(b, 1, most, least)
	b = appendMapEntry(b, 2, "type", typ)
	b = appendMapEntry(b, 2, "content-type", ctName)
	p := proposed{}
	if len(meta) > 0 {
		b = appendBytesField(b, 3, meta)
		p.meta = [2]int32{int32(len(b) - len(meta)), int32(len(b))}
	}
	if len(data) > 0 {
		b = appendBytesField(b, 4, data)
		p.data = [2]int32{int32(len(b) - len(data)), int32(len(b))}
	}
	p.b = b
	return p
}

// headSize is the size of a BatchAppendReq's correlation id and options.
func headSize(most, least uint64, stream string, expected esdb.ExpectedRevision) int {
	return sizeField(1, sizeUUID(most, least)) + sizeField(2, optionsSize(stream, expected))
}

func optionsSize(stream string, expected esdb.ExpectedRevision) int {
	return sizeField(1, sizeStreamName(stream)) + sizeExpected(expected) + sizeField(7, deadlineSize)
}

// appendRequestHead appends a BatchAppendReq's correlation id (most,
// least) and options to b: the request's bytes before its events.
func appendRequestHead(b []byte, most, least uint64, stream string, expected esdb.ExpectedRevision) []byte {
	b = appendUUIDField(b, 1, most, least)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(optionsSize(stream, expected)))
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
	return protowire.AppendVarint(b, deadlineSeconds)
}

// finalField is a request's last field, is_final: true.
var finalField = protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 1)

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

// uuidBits is id as UUID.Structured's halves (esdb.UUIDAsInt64's, unsigned);
// uuidFromBits is its inverse.
func uuidBits(id uuid.UUID) (most, least uint64) {
	m, l := esdb.UUIDAsInt64(id)
	return uint64(m), uint64(l)
}

func uuidFromBits(most, least uint64) (id uuid.UUID) {
	binary.BigEndian.PutUint64(id[:8], most)
	binary.BigEndian.PutUint64(id[8:], least)
	return id
}

// uuidInner is the size of UUID.Structured's content.
func uuidInner(most, least uint64) int {
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
func sizeUUID(most, least uint64) int { return sizeField(1, uuidInner(most, least)) }

func appendUUIDField(b []byte, num protowire.Number, most, least uint64) []byte {
	inner := uuidInner(most, least)
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
