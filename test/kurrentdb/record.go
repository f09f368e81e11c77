package kurrentdb

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"strings"
)

// record is one event in the log. Records are immutable once committed, so
// readers may keep pointers to them outside the store lock.
type record struct {
	Stream      string
	Revision    int64 // tombstones carry math.MaxInt64
	ID          [16]byte
	Type        string
	ContentType string
	Created     int64 // .NET ticks (100 ns) since the Unix epoch
	Metadata    []byte
	Data        []byte
	Position    uint64 // commit == prepare == this; > 0, strictly increasing

	meta *streamMeta // parsed Data of a $metadata record in a $$ stream; not encoded
}

const (
	tombstoneRevision = math.MaxInt64
	tombstoneType     = "$streamDeleted"
	metadataType      = "$metadata"
	contentTypeJSON   = "application/json"
	contentTypeBinary = "application/octet-stream"
)

func (r *record) isTombstone() bool {
	return r.Revision == tombstoneRevision && r.Type == tombstoneType
}

// isMetaStream reports whether name is a metadata stream ($$X).
func isMetaStream(name string) bool { return strings.HasPrefix(name, "$$") }

// File format
//
//	file   = header frame*
//	header = "CHRKDB01" (8 bytes)
//	frame  = len uint32 LE | crc32c(payload) uint32 LE | payload (len bytes)
//	payload = event+   (one frame per append batch: all-or-nothing on replay)
//	event  = uvarint-prefixed stream | varint revision | 16 id bytes |
//	         uvarint-prefixed type | uvarint-prefixed content type |
//	         varint created | uvarint-prefixed metadata | uvarint-prefixed data
//
// The position of an event is the file offset at which its encoding starts,
// so positions are byte offsets, > 0 and strictly increasing, and keep
// increasing across restarts. The in-memory mode computes the same offsets
// without writing them anywhere.
const (
	fileHeader      = "CHRKDB01"
	frameHeaderSize = 8
	maxFrameSize    = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodeFrame encodes recs as one frame that will start at file offset at,
// and assigns each record its position.
func encodeFrame(at uint64, recs []*record) []byte {
	buf := make([]byte, frameHeaderSize, frameHeaderSize+64*len(recs))
	for _, r := range recs {
		r.Position = at + uint64(len(buf))
		buf = appendEvent(buf, r)
	}
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(buf)-frameHeaderSize))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(buf[frameHeaderSize:], crcTable))
	return buf
}

func appendBytes(buf, b []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(b)))
	return append(buf, b...)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendEvent(buf []byte, r *record) []byte {
	buf = appendString(buf, r.Stream)
	buf = binary.AppendVarint(buf, r.Revision)
	buf = append(buf, r.ID[:]...)
	buf = appendString(buf, r.Type)
	buf = appendString(buf, r.ContentType)
	buf = binary.AppendVarint(buf, r.Created)
	buf = appendBytes(buf, r.Metadata)
	return appendBytes(buf, r.Data)
}

var errBadPayload = errors.New("malformed frame payload")

type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = errBadPayload
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.err = errBadPayload
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = errBadPayload
		return nil
	}
	out := make([]byte, n)
	copy(out, d.b[d.off:])
	d.off += int(n)
	return out
}

// decodePayload decodes the events of a frame whose header starts at file
// offset at. It never panics on bad input (see FuzzDecodePayload).
func decodePayload(at uint64, payload []byte) ([]*record, error) {
	d := &decoder{b: payload}
	var recs []*record
	for d.off < len(payload) && d.err == nil {
		r := &record{Position: at + frameHeaderSize + uint64(d.off)}
		r.Stream = string(d.bytes())
		r.Revision = d.varint()
		if d.err == nil {
			if len(payload)-d.off < 16 {
				d.err = errBadPayload
				break
			}
			copy(r.ID[:], payload[d.off:])
			d.off += 16
		}
		r.Type = string(d.bytes())
		r.ContentType = string(d.bytes())
		r.Created = d.varint()
		r.Metadata = d.bytes()
		r.Data = d.bytes()
		if d.err == nil && (r.Stream == "" || r.Revision < 0) {
			d.err = errBadPayload
		}
		recs = append(recs, r)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(recs) == 0 {
		return nil, errBadPayload
	}
	return recs, nil
}
