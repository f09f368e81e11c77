package kurrentdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// record is one event of the log, decoded. Records are immutable once
// reserved, so readers may keep them outside the store lock; the store keeps
// only a bounded cache of them (cache.go), the log holds the rest.
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

	ord uint32 // the record's ordinal in the log (index.go); not encoded
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
	maxFrameSize    = 64 << 20 // appends are at most MaxRecvMsgSize (16 MiB): a longer frame is damage
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodeFrame encodes recs as one frame that will start at file offset at,
// and assigns each record its position.
func encodeFrame(at uint64, recs []*record) []byte {
	return appendFrame(nil, at, recs)
}

// appendFrame is encodeFrame appending to buf (which must be empty or end
// at a frame boundary: offsets count from where the frame starts in buf).
func appendFrame(buf []byte, at uint64, recs []*record) []byte {
	size := frameHeaderSize
	for _, r := range recs {
		size += eventLen(r)
	}
	start := len(buf)
	buf = slices.Grow(buf, size)[:start+frameHeaderSize]
	for _, r := range recs {
		r.Position = at + uint64(len(buf)-start)
		buf = appendEvent(buf, r)
	}
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(buf)-start-frameHeaderSize))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(buf[start+frameHeaderSize:], crcTable))
	return buf
}

// eventLen is the length of r's encoding.
func eventLen(r *record) int {
	n := uvarintLen(uint64(len(r.Stream))) + len(r.Stream) + varintLen(r.Revision) + 16 +
		uvarintLen(uint64(len(r.Type))) + len(r.Type) + uvarintLen(uint64(len(r.ContentType))) + len(r.ContentType) +
		varintLen(r.Created) + uvarintLen(uint64(len(r.Metadata))) + len(r.Metadata) + uvarintLen(uint64(len(r.Data))) + len(r.Data)
	return n
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// varintLen is the length of binary.AppendVarint's zig-zag encoding.
func varintLen(v int64) int { return uvarintLen(uint64(v<<1) ^ uint64(v>>63)) }

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

// shortError: the bytes end before the event does. need is the length to
// read from the event's start to go on, 0 when not yet known.
type shortError struct{ need int }

func (e *shortError) Error() string { return "event cut short" }

// eventView is an encoded event's fields as slices of the bytes it was
// scanned from (nothing copied).
type eventView struct {
	stream   []byte
	revision int64
	id       [16]byte
	typ, ct  []byte
	created  int64
	meta     []byte
	data     []byte
}

// scanner reads the fields of one event; the first problem sticks.
type scanner struct {
	b   []byte
	off int
	err error
}

func (d *scanner) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		d.err = &shortError{}
		return 0
	case n < 0:
		d.err = errBadPayload
		return 0
	}
	d.off += n
	return v
}

func (d *scanner) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	switch {
	case n == 0:
		d.err = &shortError{}
		return 0
	case n < 0:
		d.err = errBadPayload
		return 0
	}
	d.off += n
	return v
}

func (d *scanner) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > maxFrameSize {
		d.err = errBadPayload
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.err = &shortError{need: d.off + int(n)}
		return nil
	}
	out := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return out
}

func (d *scanner) id(out *[16]byte) {
	if d.err != nil {
		return
	}
	if len(d.b)-d.off < 16 {
		d.err = &shortError{need: d.off + 16}
		return
	}
	copy(out[:], d.b[d.off:])
	d.off += 16
}

// scanEvent reads the event at the start of b and returns it and its length.
// Errors: *shortError (b ends inside the event), errBadPayload.
func scanEvent(b []byte) (eventView, int, error) {
	var v eventView
	d := &scanner{b: b}
	v.stream = d.bytes()
	v.revision = d.varint()
	d.id(&v.id)
	v.typ = d.bytes()
	v.ct = d.bytes()
	v.created = d.varint()
	v.meta = d.bytes()
	v.data = d.bytes()
	if d.err == nil && (len(v.stream) == 0 || v.revision < 0) {
		d.err = errBadPayload
	}
	return v, d.off, d.err
}

// record copies the view into a record at pos.
func (v *eventView) record(pos uint64) *record {
	r := v.alias(pos)
	r.Metadata, r.Data = clone(v.meta), clone(v.data)
	return r
}

// alias is record without copying the data and metadata: the record keeps
// the bytes it was scanned from alive, and they must never change.
func (v *eventView) alias(pos uint64) *record {
	return &record{
		Stream: string(v.stream), Revision: v.revision, ID: v.id,
		Type: string(v.typ), ContentType: string(v.ct), Created: v.created,
		Metadata: v.meta, Data: v.data, Position: pos,
	}
}

// clone copies b; never nil, like the decoder always gave.
func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// decodePayload decodes the events of a frame whose header starts at file
// offset at. It never panics on bad input (see FuzzDecodePayload).
func decodePayload(at uint64, payload []byte) ([]*record, error) {
	var recs []*record
	for off := 0; off < len(payload); {
		v, n, err := scanEvent(payload[off:])
		if err != nil {
			return nil, errBadPayload
		}
		recs = append(recs, v.record(at+frameHeaderSize+uint64(off)))
		off += n
	}
	if len(recs) == 0 {
		return nil, errBadPayload
	}
	return recs, nil
}

// readWindow is the first read of a point read: most events fit in it.
const readWindow = 4 << 10

// readRecordAt reads the event at pos from the log.
func readRecordAt(lr io.ReaderAt, pos uint64) (*record, error) {
	v, err := readEventAt(lr, pos, true)
	if err != nil {
		return nil, err
	}
	return v.record(pos), nil
}

// readHeadAt reads only the stream name and revision of the event at pos.
func readHeadAt(lr io.ReaderAt, pos uint64) (string, int64, error) {
	v, err := readEventAt(lr, pos, false)
	if err != nil {
		return "", 0, err
	}
	return string(v.stream), v.revision, nil
}

// readEventAt reads the event at pos (whole, or only its stream and
// revision), growing the read until the event fits.
func readEventAt(lr io.ReaderAt, pos uint64, whole bool) (eventView, error) {
	size := readWindow
	if !whole {
		size = 256
	}
	for {
		buf := make([]byte, size)
		n, err := lr.ReadAt(buf, int64(pos))
		if n == 0 && err != nil {
			return eventView{}, err
		}
		buf = buf[:n]
		var v eventView
		var serr error
		if whole {
			v, _, serr = scanEvent(buf)
		} else {
			d := &scanner{b: buf}
			v.stream = d.bytes()
			v.revision = d.varint()
			serr = d.err
		}
		var short *shortError
		if !errors.As(serr, &short) {
			if serr != nil {
				return eventView{}, fmt.Errorf("the record at position %d: %w", pos, serr)
			}
			return v, nil
		}
		if n < size || size >= maxFrameSize {
			return eventView{}, fmt.Errorf("the record at position %d runs past the end of the log", pos)
		}
		size = min(max(short.need, 2*size), maxFrameSize)
	}
}
