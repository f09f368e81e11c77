package capture_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// swappedRules map item inserts to thing-<id> with type ThingAdded.
const swappedRules = `capture:
  - name: thing-added
    table: public.items
    on: [insert]
    stream: {category: thing, id: new.id}
    type: ThingAdded
    data: {id: new.id}
`

// TestSwapRulesAtTransactionBoundary: a rule set swapped while a
// transaction is open applies from the next transaction on; the open one
// finishes with the old rules, so a transaction is never mapped by two
// sets.
func TestSwapRulesAtTransactionBoundary(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{})
	rs, err := mapping.LoadBytes("new.yaml", []byte(swappedRules), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx := contract.Tx{XID: 1, CommitLSN: 0x1000}
	if err := h.pipe.Begin(ctx, tx); err != nil {
		t.Fatal(err)
	}
	insert := func(tx contract.Tx, id int64, ord uint64) {
		t.Helper()
		ch := &contract.Change{Op: contract.OpInsert, Schema: "public", Table: "items", Key: []string{"id"},
			New: map[string]any{"id": id, "note": "ok"}, Tx: tx, Ordinal: ord}
		if err := h.pipe.Change(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}
	insert(tx, 1, 0)
	took := h.pipe.SwapRules(rs) // mid-transaction
	insert(tx, 2, 1)
	if err := h.pipe.Commit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-took:
		t.Fatal("the swap took effect before the next transaction began")
	default:
	}
	if err := h.feed(0x2000, 3, "ok"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-took:
	case <-time.After(10 * time.Second):
		t.Fatal("the swap did not take effect at the next Begin")
	}
	h.waitAck(0x2000)
	for id, want := range map[string]string{"item-1": "ItemAdded", "item-2": "ItemAdded", "thing-3": "ThingAdded"} {
		if got := read(t, db.Client, id); len(got) != 1 || got[0].Type != want {
			t.Errorf("%s: %+v, want one %s", id, got, want)
		}
	}
	for _, s := range []string{"thing-1", "thing-2", "item-3", "audit-3"} {
		if got := read(t, db.Client, s); len(got) != 0 {
			t.Errorf("%s: %d events, want none (mapped by the wrong rule set)", s, len(got))
		}
	}
}

// TestLagSecondsCoversUnconfirmedTransactions: the lag is 0 once everything
// received is confirmed (the lag's value while pending: TestLagQueue).
func TestLagSecondsCoversUnconfirmedTransactions(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{})
	if got := h.pipe.LagSeconds(); got != 0 {
		t.Fatalf("lag before any transaction: %v, want 0", got)
	}
	if err := h.feed(0x1000, 1, "ok"); err != nil {
		t.Fatal(err)
	}
	h.waitAck(0x1000)
	deadline := time.Now().Add(10 * time.Second)
	for h.pipe.LagSeconds() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("lag %v after the transaction was confirmed, want 0", h.pipe.LagSeconds())
		}
		time.Sleep(5 * time.Millisecond) // polling interval, with a deadline
	}
	if got := h.pipe.Acked(); got < 0x1000 {
		t.Errorf("Acked %s, want >= 0/1000", got)
	}
	if got := h.pipe.Committed(); got != 0x1000 {
		t.Errorf("Committed %s, want 0/1000", got)
	}
}
