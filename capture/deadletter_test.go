package capture_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestTooLargeDeadLetterKeepsTheKey: a too_large dead letter that is
// itself over the append limit keeps the row's key values (new and old, the
// key columns only) so the row can be found; one whose key alone is over
// the limit keeps only the position.
func TestTooLargeDeadLetterKeepsTheKey(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{MaxBatchBytes: 4096, MaxPendingBytes: 1 << 20})
	ctx := context.Background()
	tx := contract.Tx{XID: 9, CommitLSN: 0x5000}
	big := strings.Repeat("x", 10000)
	for _, step := range []func() error{
		func() error { return h.pipe.Begin(ctx, tx) },
		func() error { // the key changed: old holds the old key
			return h.pipe.Change(ctx, &contract.Change{Op: contract.OpUpdate, Schema: "public", Table: "items", Key: []string{"id"},
				New: map[string]any{"id": int64(7), "body": big, "note": "n"}, Old: map[string]any{"id": int64(6), "body": "old"}, Tx: tx, Ordinal: 0})
		},
		func() error { // the key itself is over the limit
			return h.pipe.Change(ctx, &contract.Change{Op: contract.OpUpdate, Schema: "public", Table: "items", Key: []string{"body"},
				New: map[string]any{"id": int64(8), "body": big}, Tx: tx, Ordinal: 1})
		},
		func() error { return h.pipe.Commit(ctx, tx) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	h.waitAck(0x5000)
	dl := read(t, db.Client, "chronicler-deadletter-"+testSlot)
	if len(dl) != 2 {
		t.Fatalf("%d dead letters, want 2: %+v", len(dl), dl)
	}
	for i, d := range dl {
		if d.Data["reason"] != contract.ReasonTooLarge || d.Data["truncated"] != true {
			t.Fatalf("dead letter %d: reason %v, truncated %v; want too_large, truncated", i, d.Data["reason"], d.Data["truncated"])
		}
	}
	ch := dl[0].Data["change"].(map[string]any)
	if want := map[string]any{"id": float64(7)}; !reflect.DeepEqual(ch["new"], want) {
		t.Errorf("new of the first dead letter: %v; want the key only, %v", ch["new"], want)
	}
	if want := map[string]any{"id": float64(6)}; !reflect.DeepEqual(ch["old"], want) {
		t.Errorf("old of the first dead letter: %v; want the key only, %v", ch["old"], want)
	}
	ch = dl[1].Data["change"].(map[string]any)
	if ch["new"] != nil || ch["old"] != nil || ch["ordinal"] != float64(1) || ch["commitLsn"] != "0/5000" {
		t.Errorf("second dead letter's change: new %v, old %v, ordinal %v, commitLsn %v; want no row values, at 0/5000 ordinal 1",
			ch["new"], ch["old"], ch["ordinal"], ch["commitLsn"])
	}
}
