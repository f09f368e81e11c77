package contract

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/uuid"
)

// TestSnapshotEventIDs: a snapshot row's event id depends on the slot, the
// snapshot id, the table, the key and the rule index, and not on the
// position it was emitted at (Source.EventID); other events keep EventID.
func TestSnapshotEventIDs(t *testing.T) {
	base := SnapshotEventID("s", "initial-0/10", "public.items", "[1]", 0)
	if again := SnapshotEventID("s", "initial-0/10", "public.items", "[1]", 0); again != base {
		t.Fatalf("not deterministic: %s, %s", base, again)
	}
	for name, id := range map[string]any{
		"slot":     SnapshotEventID("t", "initial-0/10", "public.items", "[1]", 0),
		"snapshot": SnapshotEventID("s", "snap-2", "public.items", "[1]", 0),
		"table":    SnapshotEventID("s", "initial-0/10", "public.other", "[1]", 0),
		"key":      SnapshotEventID("s", "initial-0/10", "public.items", "[2]", 0),
		"index":    SnapshotEventID("s", "initial-0/10", "public.items", "[1]", 1),
		// the parts are quoted: no two splits of the same text meet
		"split": SnapshotEventID("s", "initial-0/10", "public.items/[1]", "", 0),
	} {
		if id == base {
			t.Errorf("a different %s gives the same id", name)
		}
	}
	// The ids are stored: a row read again by a later build must get the
	// same one, so the derivation is pinned (the name hashed, and the ids
	// it gave when snapshots were introduced).
	for _, c := range []struct {
		slot, snapshot, table, key string
		index                      uint32
		name, id                   string
	}{
		{"s", "initial-0/10", "public.items", "[1]", 0, `s/snapshot/"initial-0/10"/"public.items"/"[1]"/0`, "b15f5d3e-22c1-53da-a0bd-6bd469f29226"},
		{"chronicler", `snap-"2"`, "public.ünï", `["a","b"]`, ^uint32(0), `chronicler/snapshot/"snap-\"2\""/"public.ünï"/"[\"a\",\"b\"]"/4294967295`, "bf76b1e8-a933-5a73-9516-583cd1717329"},
	} {
		got := SnapshotEventID(c.slot, c.snapshot, c.table, c.key, c.index)
		if want := uuid.UUID(fmtID(c.name)); got != want || got.String() != c.id {
			t.Errorf("SnapshotEventID(%q, %q, %q, %q, %d) = %s; want %s = NewSHA1 of %s (the stored ids must not change)",
				c.slot, c.snapshot, c.table, c.key, c.index, got, c.id, c.name)
		}
	}
	src := Source{Slot: "s", Schema: "public", Table: "items", Pos: Pos{CommitLSN: 500, Ordinal: 3}, Snapshot: "initial-0/10", SnapshotKey: "[1]"}
	moved := src
	moved.Pos = Pos{CommitLSN: 900, Ordinal: 7}
	if src.EventID() != base || moved.EventID() != base {
		t.Errorf("Source.EventID of a snapshot row: %s at one position, %s at another; want %s at both", src.EventID(), moved.EventID(), base)
	}
	plain := Source{Slot: "s", Schema: "public", Table: "items", Pos: Pos{CommitLSN: 500, Ordinal: 3}}
	if plain.EventID() != EventID("s", plain.Pos) {
		t.Errorf("Source.EventID of a change = %s; want EventID of its position", plain.EventID())
	}
}

// TestSnapshotMetadata: "snapshot" and "snapshotKey" are written on
// snapshot rows' events only, read back, and a rule's own metadata cannot
// set them.
func TestSnapshotMetadata(t *testing.T) {
	extra := map[string]any{MetaSnapshot: "forged", MetaSnapshotKey: "forged", "tenant": "t1"}
	row := Source{Slot: "s", Schema: "public", Table: "items", Op: OpSnapshot, Snapshot: "snap-1", SnapshotKey: "[7]"}
	change := Source{Slot: "s", Schema: "public", Table: "items", Op: OpUpdate}
	for _, c := range []struct {
		src       Source
		snap, key any
	}{{row, "snap-1", "[7]"}, {change, nil, nil}} {
		b, err := AppendMetadata(nil, &c.src, extra)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m[MetaSnapshot] != c.snap || m[MetaSnapshotKey] != c.key || m["tenant"] != "t1" {
			t.Errorf("metadata of %s: %s; want snapshot %v, snapshotKey %v, tenant t1", c.src.Op, b, c.snap, c.key)
		}
		if mm := metadataMap(&c.src, extra); mm[MetaSnapshot] != c.snap || mm[MetaSnapshotKey] != c.key {
			t.Errorf("metadataMap of %s: %v", c.src.Op, mm)
		}
		if back, ok := ParseSource(b); !ok || back.Snapshot != c.src.Snapshot || back.SnapshotKey != c.src.SnapshotKey {
			t.Errorf("ParseSource(%s) = %+v, %v", b, back, ok)
		}
	}
}

// TestSnapshotStateReadsTheLegacyFormat: the state saved before chunked
// snapshots reads as its initial snapshot; the current format round-trips.
func TestSnapshotStateReadsTheLegacyFormat(t *testing.T) {
	got, err := DecodeSnapshotState([]byte(`{"slot":"s","point":"16/B374D848","done":false,"table":1,"tables":["public.a","public.b"],"lastKey":["3"],"rows":40}`))
	if err != nil {
		t.Fatal(err)
	}
	want := SnapshotState{Slot: "s", Snapshots: []SnapshotEntry{{ID: "initial-16/B374D848", Initial: true, Tables: []string{"public.a", "public.b"},
		State: "running", Table: 1, LastKey: []string{"3"}, Rows: 40, Floor: "16/B374D848"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("legacy state = %+v; want %+v", got, want)
	}
	back, err := DecodeSnapshotState(EncodeSnapshotState(want))
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, want)
	}
	for _, bad := range []string{`{"slot":"s","snapshots":[{"id":"x","tables":["public.a"],"floor":"nope","state":"running"}]}`,
		`{"slot":"s","snapshots":[{"id":"","tables":["public.a"],"floor":"0/1","state":"running"}]}`, `{"slot":"s","point":"bad"}`, `[`} {
		if _, err := DecodeSnapshotState([]byte(bad)); err == nil {
			t.Errorf("DecodeSnapshotState(%s) accepted it", bad)
		}
	}
}
