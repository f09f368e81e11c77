package kurrentdb

import (
	"bytes"
	"math"
	"testing"
)

func sampleRecords() []*record {
	return []*record{
		{Stream: "customer-42", Revision: 0, ID: newID(), Type: "Created", ContentType: contentTypeJSON, Created: 17e15, Metadata: []byte(`{"m":1}`), Data: []byte(`{"a":1}`)},
		{Stream: "$$customer-42", Revision: 7, ID: newID(), Type: metadataType, ContentType: contentTypeJSON, Created: 1, Data: []byte(`{"$tb":3}`)},
		{Stream: "x", Revision: tombstoneRevision, ID: newID(), Type: tombstoneType, ContentType: contentTypeBinary, Data: []byte{}},
	}
}

// TestFrameRoundTrip: decoding an encoded frame gives back every field and
// the positions encodeFrame assigned (strictly increasing, inside the frame).
func TestFrameRoundTrip(t *testing.T) {
	const at = 4096
	recs := sampleRecords()
	frame := encodeFrame(at, recs)
	got, err := decodePayload(at, frame[frameHeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(got), len(recs))
	}
	for i, r := range recs {
		g := got[i]
		if g.Stream != r.Stream || g.Revision != r.Revision || g.ID != r.ID || g.Type != r.Type || g.ContentType != r.ContentType ||
			g.Created != r.Created || !bytes.Equal(g.Metadata, r.Metadata) || !bytes.Equal(g.Data, r.Data) || g.Position != r.Position {
			t.Errorf("record %d: got %+v, want %+v", i, g, r)
		}
		if r.Position <= at || r.Position >= at+uint64(len(frame)) || (i > 0 && r.Position <= recs[i-1].Position) {
			t.Errorf("record %d position %d not inside frame [%d, %d) and increasing", i, r.Position, at, at+len(frame))
		}
	}
}

// FuzzDecodePayload: the replay decoder never panics on arbitrary bytes,
// and whatever it accepts re-encodes to records equal to it (not to the same
// bytes: a non-minimal varint decodes fine and re-encodes minimal).
func FuzzDecodePayload(f *testing.F) {
	f.Add(encodeFrame(8, sampleRecords())[frameHeaderSize:])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, payload []byte) {
		recs, err := decodePayload(8, payload)
		if err != nil {
			return
		}
		again, err := decodePayload(8, encodeFrame(8, recs)[frameHeaderSize:])
		if err != nil || len(again) != len(recs) {
			t.Fatalf("re-encoded payload: %d records, %v; want %d", len(again), err, len(recs))
		}
		for i, r := range recs {
			g := again[i]
			if g.Stream != r.Stream || g.Revision != r.Revision || g.ID != r.ID || g.Type != r.Type || g.ContentType != r.ContentType ||
				g.Created != r.Created || !bytes.Equal(g.Metadata, r.Metadata) || !bytes.Equal(g.Data, r.Data) {
				t.Fatalf("record %d changed in a round trip: %+v -> %+v", i, r, g)
			}
		}
	})
}

// TestWithTruncateBefore: the undelete rewrite keeps other keys and sets $tb.
func TestWithTruncateBefore(t *testing.T) {
	m := parseMeta(withTruncateBefore([]byte(`{"$maxCount":5,"$tb":9223372036854775807,"owner":"x"}`), 3))
	if m.truncateBefore != 3 || m.maxCount != 5 || m.softDeleted() {
		t.Fatalf("meta = %+v", m)
	}
	if m := parseMeta(withTruncateBefore([]byte(`not json`), 2)); m.truncateBefore != 2 {
		t.Fatalf("from bad JSON: %+v", m)
	}
}

// TestEventLen: the computed length of an event's encoding is the length
// appendEvent writes, for varints of every size.
func TestEventLen(t *testing.T) {
	for _, r := range sampleRecords() {
		for _, n := range []int64{0, 1, -1, 63, 64, -65, 1 << 20, -1 << 40, math.MaxInt64, math.MinInt64} {
			r.Revision, r.Created = n, -n
			if got, want := eventLen(r), len(appendEvent(nil, r)); got != want {
				t.Fatalf("eventLen(%+v) = %d, appendEvent wrote %d", r, got, want)
			}
		}
	}
}
