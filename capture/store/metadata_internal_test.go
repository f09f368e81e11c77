package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/capture/change"
)

// mapMetadata is the encoding appendMetadata replaced: json.Marshal of the
// source metadata merged with the appender's keys. appendMetadata must make
// the same bytes.
func mapMetadata(slot string, ev *Event) ([]byte, error) {
	meta := make(map[string]any, len(ev.Metadata)+5)
	for k, v := range ev.Metadata {
		meta[k] = v
	}
	meta[MetaSlot] = slot
	meta[MetaCommitLSN] = ev.Pos.CommitLSN.String()
	meta[MetaOrdinal] = ev.Pos.Ordinal
	meta[MetaIndex] = ev.Pos.Index
	meta[MetaCausation] = ChangeID(slot, ev.Pos.CommitLSN, ev.Pos.Ordinal).String()
	return json.Marshal(meta)
}

// sourceMetadata has the keys and value types mapping.SourceMetadata writes.
func sourceMetadata() map[string]any {
	return map[string]any{
		"database": "bench", "schema": "public", "table": "pgbench_accounts", "op": "update",
		"lsn": "0/1A2B3C4D", "commitLsn": "0/1A2B3D00", "xid": int64(7345), "ordinal": int64(2),
		"commitTime": time.Date(2026, 11, 23, 11, 19, 38, 123456000, time.UTC),
		"rule":       "account-balance-changed", "index": int64(0), "$correlationId": "0/1A2B3D00",
	}
}

func TestMetadataEncodingMatchesEncodingJSON(t *testing.T) {
	pos := Pos{CommitLSN: change.LSN(0x1A_2B3D00), Ordinal: 2, Index: 1}
	with := func(k string, v any) map[string]any {
		m := sourceMetadata()
		m[k] = v
		return m
	}
	cases := []struct {
		name string
		slot string
		meta map[string]any
		pos  Pos
	}{
		{"capture's source metadata", "chronicler", sourceMetadata(), pos},
		{"no metadata", "s", nil, pos},
		{"zero position", "s", map[string]any{}, Pos{}},
		{"largest position", "s", nil, Pos{CommitLSN: change.LSN(^uint64(0)), Ordinal: ^uint64(0), Index: ^uint32(0)}},
		{"appender keys win over source keys", "slot_a", with("slot", "someone else's"), pos},
		{"HTML characters escaped as encoding/json does", "s", with("table", "a<b>&c"), pos},
		{"quotes, backslashes, control characters", "s", with("rule", "q\"\\\n\t\x01"), pos},
		{"unicode, U+2028 and invalid UTF-8", "s", with("rule", "é日本\u2028\u2029\xff\xfe"), pos},
		{"escapes in a key", "s", with("k\"<&>\u2028", "v"), pos},
		{"escapes in the slot", "sl\"ot<", nil, pos},
		{"rule metadata of other types", "s", map[string]any{
			"f": 1.5, "big": 1e21, "neg": int64(-7), "i": 42, "i32": int32(-3), "u32": uint32(9), "u64": uint64(1 << 63),
			"t": true, "n": nil, "list": []any{"a", 1.0, nil}, "obj": map[string]any{"z": 1, "a": "<"},
			"local": time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600)), "zero": time.Time{},
		}, pos},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := &Event{Stream: "x-1", Metadata: c.meta, Pos: c.pos}
			want, err := mapMetadata(c.slot, ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendMetadata(nil, c.slot, ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appendMetadata:\n got %s\nwant %s", got, want)
			}
			slot, p, ok := tailPos(got)
			if !ok || slot != c.slot || p != c.pos {
				t.Fatalf("read back slot %q pos %v ok %v; want %q %v", slot, p, ok, c.slot, c.pos)
			}
		})
	}
}

// TestMetadataKeyOrderCache encodes key sets that differ by one key in
// turn, so every call either reuses the cached order rightly or must notice
// that it does not fit.
func TestMetadataKeyOrderCache(t *testing.T) {
	base := sourceMetadata()
	extra := sourceMetadata()
	extra["tenant"] = "t1"
	fewer := sourceMetadata()
	delete(fewer, "xid")
	swapped := sourceMetadata() // same size as base, one key different
	delete(swapped, "xid")
	swapped["aaa"] = "first"
	ownOnly := map[string]any{"slot": "x", "ordinal": int64(1)}
	for i, m := range []map[string]any{base, base, extra, base, fewer, base, swapped, base, swapped, ownOnly, nil, ownOnly, base} {
		ev := &Event{Metadata: m, Pos: Pos{CommitLSN: 0x1A2B3D00, Ordinal: uint64(i)}}
		want, err := mapMetadata("s", ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendMetadata(nil, "s", ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("call %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestMetadataEncodingRefusesWhatEncodingJSONRefuses(t *testing.T) {
	for name, v := range map[string]any{
		"year 10000": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		"a channel":  make(chan int),
		"NaN":        func() float64 { z := 0.0; return z / z }(),
	} {
		t.Run(name, func(t *testing.T) {
			ev := &Event{Metadata: map[string]any{"v": v}}
			if _, err := mapMetadata("s", ev); err == nil {
				t.Fatal("encoding/json accepted it; the case is wrong")
			}
			if _, err := appendMetadata(nil, "s", ev); err == nil {
				t.Fatal("appendMetadata accepted a value encoding/json refuses")
			}
		})
	}
}

func TestIDsAreTheFormerFmtDerivedOnes(t *testing.T) {
	for _, p := range []Pos{{}, {CommitLSN: 0x1_00000ABC, Ordinal: 17, Index: 3}, {CommitLSN: change.LSN(^uint64(0)), Ordinal: ^uint64(0), Index: ^uint32(0)}} {
		for _, slot := range []string{"", "chronicler", "a/b"} {
			if got, want := EventID(slot, p), fmtID(slot+"/"+fmt.Sprintf("%s/%d/%d", p.CommitLSN, p.Ordinal, p.Index)); got != want {
				t.Fatalf("EventID(%q, %v) = %s; want %s (the stored ids must not change)", slot, p, got, want)
			}
			if got, want := ChangeID(slot, p.CommitLSN, p.Ordinal), fmtID(fmt.Sprintf("%s/%s/%d", slot, p.CommitLSN, p.Ordinal)); got != want {
				t.Fatalf("ChangeID(%q, %v) = %s; want %s (the stored ids must not change)", slot, p, got, want)
			}
		}
	}
}

// FuzzMetadataEncoding checks that appendMetadata's output is what
// encoding/json makes of the same map, and decodes to it.
func FuzzMetadataEncoding(f *testing.F) {
	f.Add("chronicler", "public", "pgbench_accounts", "update", int64(7), uint64(0x1A2B3D00), uint64(2), uint32(0), int64(1700000000123456789))
	f.Add("s\"<", "\u2028", "\xff", "", int64(-1), uint64(1<<63), uint64(0), uint32(1<<31), int64(-62135596800000000))
	f.Fuzz(func(t *testing.T, slot, schema, table, key string, xid int64, lsn, ordinal uint64, index uint32, nanos int64) {
		meta := map[string]any{
			"schema": schema, "table": table, "xid": xid, "commitTime": time.Unix(0, nanos).UTC(),
			key: table, // any key, including the appender's own
		}
		ev := &Event{Metadata: meta, Pos: Pos{CommitLSN: change.LSN(lsn), Ordinal: ordinal, Index: index}}
		want, werr := mapMetadata(slot, ev)
		got, gerr := appendMetadata(nil, slot, ev)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("encoding/json error %v, appendMetadata error %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendMetadata:\n got %s\nwant %s", got, want)
		}
		var a, b map[string]any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("not valid JSON: %v: %s", err, got)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("decoded %v; want %v", a, b)
		}
	})
}

func BenchmarkMetadataEncoding(b *testing.B) {
	ev := &Event{Metadata: sourceMetadata(), Pos: Pos{CommitLSN: 0x1A2B3D00, Ordinal: 2}}
	b.Run("appendMetadata", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			var err error
			if buf, err = appendMetadata(buf[:0], "chronicler", ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal of a merged map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := mapMetadata("chronicler", ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func fmtID(name string) [16]byte { return uuid.NewSHA1(idSpace, []byte(name)) }
