package conformance_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// Helpers for what the official Go client v4.2.0 cannot express: appends
// with any content type or without a type, the gRPC status and trailers of
// an error, and the fields KurrentDB added to its protos after the client's
// (read here from the unknown fields of the client's older messages).

// rawEvent is one proposed message of a raw append.
type rawEvent struct {
	id       uuid.UUID
	metadata map[string]string // "type", "content-type", as sent
	custom   []byte
	data     []byte
}

func rawJSON(typ string, data string) rawEvent {
	return rawEvent{id: uuid.New(), metadata: map[string]string{"type": typ, "content-type": "application/json"}, data: []byte(data)}
}

func (e rawEvent) proto() *streams.AppendReq_ProposedMessage {
	return &streams.AppendReq_ProposedMessage{
		Id:             &shared.UUID{Value: &shared.UUID_String_{String_: e.id.String()}},
		Metadata:       e.metadata,
		CustomMetadata: e.custom,
		Data:           e.data,
	}
}

// rawAppendResult is what the server answered a raw Append: the response or
// the error status, with the call's trailers.
type rawAppendResult struct {
	resp    *streams.AppendResp
	err     error
	trailer metadata.MD
}

// rawAppend appends events to stream with expected revision any through the
// generated Streams client: options, the events, close; the answer is read
// even when a Send fails (the server may end the call early).
func rawAppend(t testing.TB, stream string, events ...rawEvent) rawAppendResult {
	t.Helper()
	return rawAppendOn(t, grpcConn(t), stream, events...)
}

// rawAppendOn is rawAppend on conn (another server, other credentials).
func rawAppendOn(t testing.TB, conn *grpc.ClientConn, stream string, events ...rawEvent) rawAppendResult {
	t.Helper()
	var tr metadata.MD
	call, err := streams.NewStreamsClient(conn).Append(ctx(t), grpc.Trailer(&tr))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	reqs := []*streams.AppendReq{{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
		StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
		ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}},
	}}}}
	for _, e := range events {
		reqs = append(reqs, &streams.AppendReq{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: e.proto()}})
	}
	for _, r := range reqs {
		if err := call.Send(r); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Append send: %v", err)
			}
			break // the status comes with the answer
		}
	}
	resp, err := call.CloseAndRecv()
	return rawAppendResult{resp: resp, err: err, trailer: tr}
}

// rawRead runs a Read through the generated client and returns every
// message until the server ends the call (the error, nil for OK) or until
// stop returns true.
func rawRead(t testing.TB, opts *streams.ReadReq_Options, stop func([]*streams.ReadResp) bool) ([]*streams.ReadResp, error) {
	t.Helper()
	if opts.UuidOption == nil {
		opts.UuidOption = &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}}
	}
	if opts.FilterOption == nil {
		opts.FilterOption = &streams.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}}
	}
	call, err := streams.NewStreamsClient(grpcConn(t)).Read(ctx(t), &streams.ReadReq{Options: opts})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var out []*streams.ReadResp
	for stop == nil || !stop(out) {
		m, err := call.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, nil
}

// untilCaughtUpRaw stops a raw subscription at its first caught_up.
func untilCaughtUpRaw(got []*streams.ReadResp) bool {
	return len(got) > 0 && got[len(got)-1].GetCaughtUp() != nil
}

// statusOf returns the gRPC status of err (an OK status for nil).
func statusOf(err error) *status.Status {
	st, _ := status.FromError(err)
	return st
}

// trailer returns the one value of key in md ("" when absent), failing the
// test when it is there more than once.
func trailer(t testing.TB, md metadata.MD, key string) string {
	t.Helper()
	v := md.Get(key)
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	t.Fatalf("trailer %q has %d values: %v", key, len(v), v)
	return ""
}

// wireField is one field of an encoded protobuf message: its number and
// its varint value or its bytes.
type wireField struct {
	num    protowire.Number
	varint uint64
	bytes  []byte
}

// wireFields decodes one level of an encoded message (varint and
// length-delimited fields; others are skipped), failing the test on bad
// input.
func wireFields(t testing.TB, b []byte) []wireField {
	t.Helper()
	var out []wireField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag in %x", b)
		}
		b = b[n:]
		f := wireField{num: num}
		switch typ {
		case protowire.VarintType:
			f.varint, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			t.Fatalf("bad field %d in %x", num, b)
		}
		b = b[n:]
		out = append(out, f)
	}
	return out
}

// newFields are the fields 24.10.5+ added to ReadResp.CaughtUp and
// ReadResp.Checkpoint, decoded from a message's unknown fields:
// CaughtUp{timestamp = 1, stream_revision = 2, position = 3},
// Checkpoint{timestamp = 3}.
type newFields struct {
	timestamp      *time.Time
	streamRevision *int64
	position       *[2]uint64 // commit, prepare
}

func decodeNewFields(t testing.TB, raw []byte, tsField protowire.Number) newFields {
	t.Helper()
	var f newFields
	for _, w := range wireFields(t, raw) {
		switch {
		case w.num == tsField && w.bytes != nil:
			var sec, nanos uint64
			for _, p := range wireFields(t, w.bytes) {
				switch p.num {
				case 1:
					sec = p.varint
				case 2:
					nanos = p.varint
				}
			}
			ts := time.Unix(int64(sec), int64(nanos))
			f.timestamp = &ts
		case w.num == 2 && tsField == 1:
			r := int64(w.varint)
			f.streamRevision = &r
		case w.num == 3 && tsField == 1:
			var p [2]uint64
			for _, q := range wireFields(t, w.bytes) {
				if q.num == 1 || q.num == 2 {
					p[q.num-1] = q.varint
				}
			}
			f.position = &p
		}
	}
	return f
}

func caughtUpFields(t testing.TB, m *streams.ReadResp) newFields {
	t.Helper()
	return decodeNewFields(t, m.GetCaughtUp().ProtoReflect().GetUnknown(), 1)
}

func checkpointFields(t testing.TB, m *streams.ReadResp) newFields {
	t.Helper()
	return decodeNewFields(t, m.GetCheckpoint().ProtoReflect().GetUnknown(), 3)
}

// nearNow reports whether a server timestamp is the server's current time:
// within an hour of this machine's clock (a real server may run elsewhere).
func nearNow(ts *time.Time) bool {
	return ts != nil && ts.After(time.Now().Add(-time.Hour)) && ts.Before(time.Now().Add(time.Hour))
}
