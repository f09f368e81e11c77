package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// reference is the encoding AppendMetadata must equal: encoding/json,
// without HTML escaping, of the metadata as a map (metadataMap), with every
// time in UTC (the contract's one rule of its own).
func reference(src *Source, extra map[string]any) ([]byte, error) {
	m := metadataMap(src, extra)
	for k, v := range m {
		if t, ok := v.(time.Time); ok {
			m[k] = t.UTC()
		}
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

func testSource() Source {
	return Source{Slot: "chronicler", Database: "bench", Schema: "public", Table: "pgbench_accounts", Op: OpUpdate,
		LSN: 0x1A2B3C4D, XID: 7345, CommitTime: time.Date(2026, 11, 23, 11, 19, 38, 123456000, time.UTC), Rule: "account-balance-changed",
		Pos: Pos{CommitLSN: 0x1A2B3D00, Ordinal: 2, Index: 1}}
}

func TestMetadataEncodingMatchesEncodingJSON(t *testing.T) {
	with := func(f func(*Source)) Source { s := testSource(); f(&s); return s }
	cases := []struct {
		name  string
		src   Source
		extra map[string]any
	}{
		{"capture's source", testSource(), nil},
		{"zero source but the slot", Source{Slot: "s"}, nil},
		{"largest position", with(func(s *Source) { s.Pos = Pos{CommitLSN: LSN(1<<63 - 1), Ordinal: 1<<63 - 1, Index: ^uint32(0)} }), nil},
		{"source keys win over the rule's", testSource(), map[string]any{"slot": "someone else's", "ordinal": "x", "tenant": "t1"}},
		{"HTML characters are not escaped", with(func(s *Source) { s.Table = "a<b>&c" }), nil},
		{"quotes, backslashes, control characters", with(func(s *Source) { s.Rule = "q\"\\\n\t\x01" }), nil},
		{"unicode, U+2028 and invalid UTF-8", with(func(s *Source) { s.Rule = "é日本\u2028\u2029\xff\xfe" }), nil},
		{"escapes in a key", testSource(), map[string]any{"k\"<&>\u2028": "v"}},
		{"escapes in the slot", with(func(s *Source) { s.Slot = "sl\"ot<" }), nil},
		{"a commit time in another zone is written in UTC", with(func(s *Source) {
			s.CommitTime = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
		}), nil},
		{"rule metadata of other types", testSource(), map[string]any{
			"f": 1.5, "big": 1e21, "neg": int64(-7), "i": 42, "i32": int32(-3), "u32": uint32(9), "u64": uint64(1 << 63),
			"t": true, "n": nil, "list": []any{"a", 1.0, nil}, "obj": map[string]any{"z": 1, "a": "<"},
			"local": time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600)), "zero": time.Time{},
			"aaa": "sorts first", "zzz": "sorts last",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, err := reference(&c.src, c.extra)
			if err != nil {
				t.Fatal(err)
			}
			got, err := AppendMetadata(nil, &c.src, c.extra)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendMetadata:\n got %s\nwant %s", got, want)
			}
			back, ok := ParseSource(got)
			if !ok || back.Slot != viaJSON(c.src.Slot) || back.Pos != c.src.Pos || back.Rule != viaJSON(c.src.Rule) || back.Op != c.src.Op ||
				back.LSN != c.src.LSN || back.XID != c.src.XID || !back.CommitTime.Equal(c.src.CommitTime) {
				t.Fatalf("read back %+v ok %v; want %+v", back, ok, c.src)
			}
		})
	}
}

func TestParseSourceRefusesForeignMetadata(t *testing.T) {
	for _, meta := range []string{``, `{}`, `[1]`, `{"slot":"s","ordinal":1,"index":0}`, `{"slot":"s","commitLsn":"0/1","index":0}`,
		`{"slot":"","commitLsn":"0/1","ordinal":1,"index":0}`, `{"slot":"s","commitLsn":"x","ordinal":1,"index":0}`,
		`{"slot":"s","commitLsn":"0/1","ordinal":-1,"index":0}`, `{"slot":"s","commitLsn":"0/1","ordinal":1,"index":4294967296}`} {
		if s, ok := ParseSource([]byte(meta)); ok {
			t.Errorf("ParseSource(%s) = %+v, true; want false", meta, s)
		}
	}
}

// TestMetadataEncodingRefusesWhatEncodingJSONRefuses: but a year outside
// 0000-9999, which encoding/json refuses, has a form of its own (forms.go).
func TestMetadataEncodingRefusesWhatEncodingJSONRefuses(t *testing.T) {
	for name, v := range map[string]any{
		"a channel": make(chan int),
		"NaN":       func() float64 { z := 0.0; return z / z }(),
	} {
		t.Run(name, func(t *testing.T) {
			src := testSource()
			if _, err := reference(&src, map[string]any{"v": v}); err == nil {
				t.Fatal("encoding/json accepted it; the case is wrong")
			}
			if _, err := AppendMetadata(nil, &src, map[string]any{"v": v}); err == nil {
				t.Fatal("AppendMetadata accepted a value encoding/json refuses")
			}
		})
	}
}

func TestIDsAreTheFormerFmtDerivedOnes(t *testing.T) {
	for _, p := range []Pos{{}, {CommitLSN: 0x1_00000ABC, Ordinal: 17, Index: 3}, {CommitLSN: LSN(^uint64(0)), Ordinal: ^uint64(0), Index: ^uint32(0)}} {
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

// FuzzMetadataEncoding checks that AppendMetadata's output is the
// reference encoding, and reads back to the source.
func FuzzMetadataEncoding(f *testing.F) {
	f.Add("chronicler", "public", "pgbench_accounts", "update", uint32(7), uint64(0x1A2B3D00), uint64(2), uint32(0), int64(1700000000123456789))
	f.Add("s\"<", "\u2028", "\xff", "", uint32(1<<31), uint64(1<<63), uint64(0), uint32(1<<31), int64(-62135596800000000))
	f.Fuzz(func(t *testing.T, slot, schema, table, key string, xid uint32, lsn, ordinal uint64, index uint32, nanos int64) {
		if slot == "" || ordinal > 1<<63-1 {
			t.Skip("a source always has a slot; ordinals fit int64")
		}
		src := Source{Slot: slot, Schema: schema, Table: table, XID: xid, CommitTime: time.Unix(0, nanos),
			Pos: Pos{CommitLSN: LSN(lsn), Ordinal: ordinal, Index: index}}
		extra := map[string]any{key: table} // any key, including the source's own
		want, werr := reference(&src, extra)
		got, gerr := AppendMetadata(nil, &src, extra)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("encoding/json error %v, AppendMetadata error %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendMetadata:\n got %s\nwant %s", got, want)
		}
		back, ok := ParseSource(got)
		if !ok || back.Slot != viaJSON(slot) || back.Pos != src.Pos || back.Schema != viaJSON(schema) || back.XID != xid {
			t.Fatalf("read back %+v, %v; want %+v", back, ok, src)
		}
	})
}

func BenchmarkMetadataEncoding(b *testing.B) {
	src := testSource()
	b.Run("AppendMetadata", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			var err error
			if buf, err = AppendMetadata(buf[:0], &src, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json of the map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reference(&src, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestMetadataMapHasTheSourcePosition(t *testing.T) {
	ch := &Change{Op: OpInsert, Database: "shop", Schema: "public", Table: "customers", LSN: 0x16B3700, Ordinal: 3,
		Tx: Tx{XID: 9, CommitLSN: 0x16B3748, CommitTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	src := SourceOf("slot_a", ch, "second", 1)
	m := metadataMap(&src, map[string]any{"source": "public.customers", "rule": "not the rule"})
	want := map[string]any{
		MetaCommitLSN: "0/16B3748", MetaXID: int64(9), MetaOrdinal: int64(3), MetaTable: "customers",
		MetaSchema: "public", MetaOp: "insert", MetaRule: "second", MetaIndex: int64(1), MetaSlot: "slot_a",
		MetaCorrelation: "0/16B3748", MetaLSN: "0/16B3700", "source": "public.customers", MetaDatabase: "shop",
		MetaCausation: ChangeID("slot_a", 0x16B3748, 3).String(), MetaCommitTime: ch.Tx.CommitTime,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("metadataMap = %v\nwant %v", m, want)
	}
	b, err := AppendMetadata(nil, &src, map[string]any{"source": "public.customers"})
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	back, ok := SourceFromMap(decoded.(map[string]any))
	if !ok || back.Slot != src.Slot || back.Pos != src.Pos || back.Database != "shop" || back.Table != "customers" || !back.CommitTime.Equal(src.CommitTime) {
		t.Fatalf("SourceFromMap = %+v, %v; want %+v", back, ok, src)
	}
}

// viaJSON is s as it reads back from JSON (invalid UTF-8 as U+FFFD).
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func fmtID(name string) [16]byte { return uuid.NewSHA1(idSpace, []byte(name)) }

// FuzzIDs holds the ids computed on a stack buffer to uuid.NewSHA1's, for
// any slot (long ones too) and position.
func FuzzIDs(f *testing.F) {
	f.Add("chronicler", uint64(0x1A2B3D00), uint64(2), uint32(0))
	f.Add(strings.Repeat("s", 200), ^uint64(0), ^uint64(0), ^uint32(0))
	f.Fuzz(func(t *testing.T, slot string, lsn, ordinal uint64, index uint32) {
		p := Pos{CommitLSN: LSN(lsn), Ordinal: ordinal, Index: index}
		if got, want := EventID(slot, p), uuid.NewSHA1(idSpace, []byte(slot+"/"+p.String())); got != want {
			t.Fatalf("EventID(%q, %v) = %s; want %s", slot, p, got, want)
		}
		if got, want := ChangeID(slot, p.CommitLSN, ordinal), uuid.NewSHA1(idSpace, []byte(fmt.Sprintf("%s/%s/%d", slot, p.CommitLSN, ordinal))); got != want {
			t.Fatalf("ChangeID(%q, %v, %d) = %s; want %s", slot, p.CommitLSN, ordinal, got, want)
		}
	})
}

func BenchmarkIDs(b *testing.B) {
	b.ReportAllocs()
	p := Pos{CommitLSN: 0x1A2B3D00, Ordinal: 2}
	for b.Loop() {
		_ = EventID("chronicler", p)
		_ = ChangeID("chronicler", p.CommitLSN, p.Ordinal)
	}
}

// metadataMap is the metadata as a map of Go values (commitTime a
// time.Time): the oracle the tests hold AppendMetadata's bytes to. Readers
// (the publisher, rule tests) decode the stored bytes with DecodeJSON.
func metadataMap(src *Source, extra map[string]any) map[string]any {
	m := make(map[string]any, len(extra)+len(ownKeys))
	for k, v := range extra {
		m[k] = v
	}
	commit := src.Pos.CommitLSN.String()
	m[MetaSlot] = src.Slot
	m[MetaDatabase] = src.Database
	m[MetaSchema] = src.Schema
	m[MetaTable] = src.Table
	m[MetaOp] = src.Op.String()
	m[MetaLSN] = src.LSN.String()
	m[MetaCommitLSN] = commit
	m[MetaCorrelation] = commit
	m[MetaCausation] = ChangeID(src.Slot, src.Pos.CommitLSN, src.Pos.Ordinal).String()
	m[MetaXID] = int64(src.XID)
	m[MetaCommitTime] = src.CommitTime.UTC()
	m[MetaOrdinal] = int64(src.Pos.Ordinal)
	m[MetaRule] = src.Rule
	m[MetaIndex] = int64(src.Pos.Index)
	if src.Snapshot != "" {
		m[MetaSnapshot] = src.Snapshot
		m[MetaSnapshotKey] = src.SnapshotKey
	} else {
		delete(m, MetaSnapshot) // a rule's own metadata never sets them
		delete(m, MetaSnapshotKey)
	}
	return m
}
