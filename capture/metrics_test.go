package capture_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/change"
	"github.com/chronicler-dev/chronicler/capture/store"
)

// TestMetricsCountResults: mapped, unmatched and dead-lettered changes and
// the events handed to the store are counted under their names.
func TestMetricsCountResults(t *testing.T) {
	db := newDB(t)
	reg := prometheus.NewRegistry()
	h := newHarness(t, db, capture.Config{Registerer: reg}, store.Config{})
	if err := h.feed(0x1000, 1, "ok", "bad"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx := change.Tx{CommitLSN: 0x2000}
	if err := h.pipe.Begin(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := h.pipe.Change(ctx, &change.Change{Op: change.OpDelete, Schema: "public", Table: "items", Tx: tx,
		Old: map[string]any{"id": int64(1)}}); err != nil { // no delete rule: unmatched
		t.Fatal(err)
	}
	if err := h.pipe.Commit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	h.waitAck(0x2000)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			if c := m.GetCounter(); c != nil {
				got[name] = c.GetValue()
			}
		}
	}
	want := map[string]float64{
		"chronicler_pipeline_changes_total{mapped}":        1,
		"chronicler_pipeline_changes_total{deadlettered}":  1,
		"chronicler_pipeline_changes_total{unmatched}":     1,
		"chronicler_pipeline_events_captured_total":        3, // item-1, audit-1, item-2
		"chronicler_pipeline_deadletters_total{rule}":      1,
		"chronicler_pipeline_deadletters_total{too_large}": 0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
