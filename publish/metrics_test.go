package publish_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestMetricsMatchWhatWasCommitted: the metrics registered by Register
// agree with Stats and with what the topic holds: records and events
// counted, records by promotion rule, one batch-size and one commit-time
// sample per commit (batch sizes summing to the records), one rule swap,
// the lag gauge 0 once Run returned; Phase goes stopped, running, stopped.
func TestMetricsMatchWhatWasCommitted(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	m := publish.NewMetrics()
	if err := m.Register(prometheus.NewRegistry()); err != nil {
		t.Fatalf("Register: %v", err)
	}
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	cfg.Metrics = m
	p, err := publish.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ph := p.Phase(); ph != publish.PhaseStopped {
		t.Errorf("phase before Run: %s, want stopped", ph)
	}
	r := start(t, cfg)
	exp.customers(s, &lsn, 30)
	r.waitThrough(t, s.last)
	if ph := r.p.Phase(); ph != publish.PhaseRunning {
		t.Errorf("phase while publishing: %s, want running", ph)
	}
	select {
	case <-r.p.SwapRules(loadRulesText(t, n, swappedRulesYAML)):
	case <-time.After(30 * time.Second):
		t.Fatal("the swap did not take effect within 30s of an idle publisher")
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if ph := r.p.Phase(); ph != publish.PhaseStopped {
		t.Errorf("phase after Run returned: %s, want stopped", ph)
	}
	exp.check(t, readTopic(t, k, n.customers))

	st := r.p.Stats()
	if st.Records != 30 || st.Events != 30 || st.Commits < 1 {
		t.Fatalf("stats %+v: want 30 records and events in at least one commit", st)
	}
	for name, c := range map[string]struct {
		m    prometheus.Metric
		want float64
	}{
		"records_total":      {m.Records, 30},
		"events_total":       {m.Events, 30},
		"dead_letters_total": {m.DeadLetters, 0},
		"commits_total":      {m.Transactions, float64(st.Commits)},
		`rule_records_total{rule="customer-changed"}`: {m.RuleRecords.WithLabelValues("customer-changed"), 30},
		"rules_swaps_total":                           {m.RulesSwaps, 1},
		"lag_seconds":                                 {m.LagSeconds, 0},
	} {
		if got := value(t, c.m); got != c.want {
			t.Errorf("chronicler_publish_%s = %v, want %v", name, got, c.want)
		}
	}
	batches := histogram(t, m.BatchRecords)
	if batches.GetSampleCount() != uint64(st.Commits) || batches.GetSampleSum() != 30 {
		t.Errorf("chronicler_publish_batch_records: %d samples summing to %v; want one per commit (%d) summing to 30",
			batches.GetSampleCount(), batches.GetSampleSum(), st.Commits)
	}
	if got := histogram(t, m.CommitSeconds).GetSampleCount(); got != uint64(st.Commits) {
		t.Errorf("chronicler_publish_commit_seconds: %d samples; want one per commit (%d)", got, st.Commits)
	}
}

// value reads a counter's or a gauge's value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

func histogram(t *testing.T, m prometheus.Metric) *dto.Histogram {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram()
}
