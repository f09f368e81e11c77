package store

import (
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// batchCodec is the "proto" codec of the BatchAppend call (a gRPC CodecV2,
// so buffers are handed over without copies): requests are *request (bytes
// encoded by hand, batchwire.go), answers *batchResponse, decoded by hand
// on their usual shape and by proto.Unmarshal otherwise.
type batchCodec struct{}

func (batchCodec) Name() string { return "proto" }

// request is one encoded BatchAppendReq as the buffers gRPC writes in
// order: its correlation id and options, each event's bytes as it was
// queued (the items' own buffers: a copy into one buffer per request was a
// sixth of the appender's allocated bytes in test/bench's bulk load, and
// gRPC pools no buffer under 1 KiB), and is_final.
type request struct{ bufs mem.BufferSlice }

// newRequest is the request with correlation id (most, least) appending
// items' events to stream.
func newRequest(most, least uint64, stream string, expected esdb.ExpectedRevision, items []*item) *request {
	head := appendRequestHead(make([]byte, 0, headSize(most, least, stream, expected)), most, least, stream, expected)
	bufs := make(mem.BufferSlice, 0, len(items)+2)
	bufs = append(bufs, mem.SliceBuffer(head))
	for _, it := range items {
		bufs = append(bufs, mem.SliceBuffer(it.ev.b))
	}
	return &request{bufs: append(bufs, mem.SliceBuffer(finalField))}
}

func (batchCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *request:
		return m.bufs, nil
	case proto.Message:
		b, err := proto.Marshal(m)
		return mem.BufferSlice{mem.SliceBuffer(b)}, err
	}
	return nil, fmt.Errorf("store: BatchAppend codec cannot marshal %T", v)
}

func (batchCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	switch m := v.(type) {
	case *batchResponse:
		return m.decode(b)
	case proto.Message:
		return proto.Unmarshal(b, m)
	}
	return fmt.Errorf("store: BatchAppend codec cannot unmarshal into %T", v)
}

// batchResponse is one BatchAppendResp. Its usual shape, a success with
// the stream's new revision, is read by hand into id and rev (receiving
// into the generated message was 13 allocations per append and, with its
// reflection, 6% of the appender's CPU in test/bench's bulk load); any
// other answer (an error, or anything the hand decoder does not know) is
// decoded by proto.Unmarshal into slow. FuzzBatchResponse holds the fast
// path to proto.Unmarshal's reading of the same bytes.
type batchResponse struct {
	most, least uint64 // the correlation id, when slow is nil
	rev         uint64 // the stream's revision after the append, when slow is nil
	slow        *streams.BatchAppendResp
}

func (r *batchResponse) decode(b []byte) error {
	if r.fast(b) {
		r.slow = nil
		return nil
	}
	r.slow = new(streams.BatchAppendResp)
	return proto.Unmarshal(b, r.slow)
}

// fast reads b if it is a success answer of the shape KurrentDB sends:
// every field once, with its wire type, and nothing but
//
//	1 correlation_id {1 structured {1 most varint, 2 least varint}}
//	3 success {1 current_revision varint, 3 position {1 commit varint, 2 prepare varint} | 4 no_position {}}
//	4 stream_identifier {3 stream_name bytes}
//	5 stream_position varint | 6 no_stream {} | 7 any {} | 8 stream_exists {}
//
// with the correlation id and the revision present. Anything else returns
// false (proto.Unmarshal then reads it), so what fast accepts is a subset
// of what proto.Unmarshal accepts, read alike.
func (r *batchResponse) fast(b []byte) bool {
	var seen uint16
	haveID, haveRev := false, false
	ok := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, body []byte) bool {
		if num > 8 || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		switch {
		case num == 1 && typ == protowire.BytesType:
			haveID = r.uuid(body)
			return haveID
		case num == 3 && typ == protowire.BytesType:
			haveRev = r.success(body)
			return haveRev
		case num == 4 && typ == protowire.BytesType:
			return fields(body, func(n protowire.Number, t protowire.Type) bool { return n == 3 && t == protowire.BytesType })
		case num == 5 && typ == protowire.VarintType:
			return seen&(1<<6|1<<7|1<<8) == 0
		case num >= 6 && num <= 8 && typ == protowire.BytesType:
			return len(body) == 0 && seen&(1<<5|1<<6|1<<7|1<<8) == 1<<num
		}
		return false
	})
	return ok && haveID && haveRev
}

// uuid reads UUID {1 structured {1 most, 2 least}}.
func (r *batchResponse) uuid(b []byte) bool {
	var seen uint8
	structured := false
	ok := walk(b, func(num protowire.Number, typ protowire.Type, _ uint64, body []byte) bool {
		if num != 1 || typ != protowire.BytesType || structured {
			return false
		}
		structured = true
		r.most, r.least = 0, 0
		return walk(body, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) bool {
			if (num != 1 && num != 2) || typ != protowire.VarintType || seen&(1<<num) != 0 {
				return false
			}
			seen |= 1 << num
			if num == 1 {
				r.most = v
			} else {
				r.least = v
			}
			return true
		})
	})
	return ok && structured
}

// success reads Success {1 current_revision, 3 position | 4 no_position}.
func (r *batchResponse) success(b []byte) bool {
	var seen uint8
	ok := walk(b, func(num protowire.Number, typ protowire.Type, v uint64, body []byte) bool {
		if num > 4 || seen&(1<<num) != 0 {
			return false
		}
		seen |= 1 << num
		switch {
		case num == 1 && typ == protowire.VarintType:
			r.rev = v
			return true
		case num == 3 && typ == protowire.BytesType && seen&(1<<4) == 0:
			return fields(body, func(n protowire.Number, t protowire.Type) bool {
				return (n == 1 || n == 2) && t == protowire.VarintType
			})
		case num == 4 && typ == protowire.BytesType && seen&(1<<3) == 0:
			return len(body) == 0
		}
		return false
	})
	return ok && seen&(1<<1) != 0
}

// walk calls f with each field of b (its varint value, or its bytes), in
// order, while f returns true; false if b is not a sequence of well-formed
// varint and length-delimited fields with valid numbers, or f said no.
func walk(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, body []byte) bool) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		var (
			v    uint64
			body []byte
		)
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			body, n = protowire.ConsumeBytes(b)
		default:
			return false
		}
		if n < 0 || !f(num, typ, v, body) {
			return false
		}
		b = b[n:]
	}
	return true
}

// fields reports whether b is well-formed and every field of it is one
// known allows (its content unread), each at most once.
func fields(b []byte, known func(protowire.Number, protowire.Type) bool) bool {
	var seen uint8
	return walk(b, func(num protowire.Number, typ protowire.Type, _ uint64, _ []byte) bool {
		if num > 7 || seen&(1<<num) != 0 || !known(num, typ) {
			return false
		}
		seen |= 1 << num
		return true
	})
}
