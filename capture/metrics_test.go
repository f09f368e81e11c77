package capture_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
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
	tx := contract.Tx{CommitLSN: 0x2000}
	if err := h.pipe.Begin(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := h.pipe.Change(ctx, &contract.Change{Op: contract.OpDelete, Schema: "public", Table: "items", Tx: tx,
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
	// The store's counters are the appender's, under their names: the three
	// events and the dead letter were stored, in at least one append.
	st := h.app.Stats()
	if st.Events < 4 || st.Appends == 0 {
		t.Fatalf("appender stats %+v: want at least 4 events stored in at least 1 append", st)
	}
	for name, v := range map[string]int64{
		"chronicler_pipeline_events_stored_total":    st.Events,
		"chronicler_store_appends_total":             st.Appends,
		"chronicler_store_events_deduplicated_total": st.Deduplicated,
		"chronicler_store_tail_reads_total":          st.TailReads,
		"chronicler_store_retries_total":             st.Retries,
		"chronicler_store_conflicts_total":           st.Conflicts,
	} {
		if g, ok := got[name]; !ok || g != float64(v) {
			t.Errorf("%s = %v (registered: %v), want %d", name, g, ok, v)
		}
	}
}
