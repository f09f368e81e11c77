package kurrentdb

import (
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// The server is built on the protos of the official Go client v4.2.0, which
// predate some fields and messages KurrentDB 24.10.14 sends. This file
// writes them on the wire as the newer protos define them
// (src/Protos/Grpc/streams.proto and shared.proto at v24.10.14), as unknown
// fields of the older messages or as an Any with the newer type's URL: a
// client built on the newer protos reads them, an older one skips them.

// ReadResp.CaughtUp (24.10.5+): timestamp = 1, stream_revision = 2 (optional
// int64), position = 3 (optional ReadResp.Position{commit = 1, prepare = 2}).
// ReadResp.Checkpoint (24.10.5+): timestamp = 3.

// appendTimestamp appends a google.protobuf.Timestamp field.
func appendTimestamp(b []byte, num protowire.Number, t time.Time) []byte {
	var ts []byte
	if s := t.Unix(); s != 0 {
		ts = protowire.AppendTag(ts, 1, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(s))
	}
	if n := t.Nanosecond(); n != 0 {
		ts = protowire.AppendTag(ts, 2, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(n))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, ts)
}

// caughtUpFields encodes CaughtUp's fields: the timestamp always; the stream
// revision of a stream subscription's checkpoint when >= 0; the position of
// a $all subscription's checkpoint when it has one (pos > 0).
func caughtUpFields(now time.Time, revision int64, isStream bool, pos uint64) []byte {
	b := appendTimestamp(nil, 1, now)
	if isStream && revision >= 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(revision))
	}
	if !isStream && pos > 0 {
		var p []byte
		p = protowire.AppendTag(p, 1, protowire.VarintType)
		p = protowire.AppendVarint(p, pos)
		p = protowire.AppendTag(p, 2, protowire.VarintType)
		p = protowire.AppendVarint(p, pos)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	return b
}

// withUnknown sets m's unknown fields to raw (which must be valid wire
// format for fields m's descriptor does not know) and returns m.
func withUnknown[M proto.Message](m M, raw []byte) M {
	m.ProtoReflect().SetUnknown(raw)
	return m
}

// maxAppendEventSizeDetail is the BatchAppend error detail
// event_store.client.MaximumAppendEventSizeExceeded{eventId = 1,
// proposedEventSize = 2, maxAppendEventSize = 3} (24.10.4+), which the Go
// client's shared.proto does not have.
func maxAppendEventSizeDetail(eventID string, size, max int) *anypb.Any {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, eventID)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(uint32(size)))
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(uint32(max)))
	return &anypb.Any{TypeUrl: "type.googleapis.com/event_store.client.MaximumAppendEventSizeExceeded", Value: b}
}
