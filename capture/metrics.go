package capture

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/capture/store"
)

// metrics are the pipeline's counters. They count deliveries: a transaction
// re-delivered after a restart is counted again (the store de-duplicates the
// events, not the counters).
type metrics struct {
	changes      *prometheus.CounterVec // result: mapped, unmatched, deadlettered
	events       prometheus.Counter     // events handed to the appender (rule outputs)
	deadLetters  *prometheus.CounterVec // reason: rule, too_large
	durableLSN   prometheus.Gauge
	progressLSN  prometheus.Gauge
	progressErrs prometheus.Counter

	ruleEvents     *prometheus.CounterVec // rule
	txEvents       prometheus.Histogram   // events per source transaction
	confirmLatency prometheus.Histogram   // receipt to confirmation
	progressWrite  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, storeStats func() store.Stats, lagSeconds func() float64) *metrics {
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicler_pipeline_changes_total",
			Help: "Changes seen by the pipeline, by result: mapped (at least one event), unmatched (no rule matched), deadlettered (some rule failed).",
		}, []string{"result"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicler_pipeline_events_captured_total",
			Help: "Low-level events the rules produced and the pipeline handed to the store appender.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicler_pipeline_deadletters_total",
			Help: "Dead-letter events written, by reason: rule (a rule failed), too_large (an event over the append limit).",
		}, []string{"reason"}),
		durableLSN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_pipeline_durable_lsn_bytes",
			Help: "Highest commit LSN below which every event is stored, as a byte position.",
		}),
		progressLSN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_pipeline_progress_lsn_bytes",
			Help: "LSN of the last progress marker written to the progress stream.",
		}),
		progressErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicler_pipeline_progress_errors_total",
			Help: "Failed progress-marker appends (retried).",
		}),
		ruleEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicler_pipeline_rule_events_total",
			Help: "Low-level events handed to the store appender, by capture rule.",
		}, []string{"rule"}),
		txEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chronicler_pipeline_transaction_events",
			Help:    "Low-level events per source transaction.",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 500, 1000, 10000},
		}),
		confirmLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chronicler_pipeline_confirm_seconds",
			Help:    "Time from a transaction's receipt to its confirmation to Postgres (stored, progress marker written).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		progressWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chronicler_pipeline_progress_write_seconds",
			Help:    "Duration of progress-marker appends.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}),
	}
	for _, r := range []string{"mapped", "unmatched", "deadlettered"} {
		m.changes.WithLabelValues(r)
	}
	for _, r := range []string{"rule", "too_large"} {
		m.deadLetters.WithLabelValues(r)
	}
	if reg != nil {
		m.register(reg, storeStats, lagSeconds)
	}
	return m
}

// register registers m and the functions reading the lag and the
// appender's counters with reg.
func (m *metrics) register(reg prometheus.Registerer, storeStats func() store.Stats, lagSeconds func() float64) {
	reg.MustRegister(m.changes, m.events, m.deadLetters, m.durableLSN, m.progressLSN, m.progressErrs,
		m.ruleEvents, m.txEvents, m.confirmLatency, m.progressWrite)
	if lagSeconds != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "chronicler_pipeline_lag_seconds",
			Help: "Capture lag: now minus the commit time of the oldest transaction received and not yet confirmed to Postgres; 0 when all is confirmed.",
		}, lagSeconds))
	}
	if storeStats != nil {
		counter := func(name, help string, f func(store.Stats) int64) {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(f(storeStats())) }))
		}
		counter("chronicler_pipeline_events_stored_total",
			"Events the store acknowledged (new appends; events found already stored are not counted).",
			func(s store.Stats) int64 { return s.Events })
		counter("chronicler_store_appends_total",
			"Successful append calls to the store; events_stored_total over this is the events per append.",
			func(s store.Stats) int64 { return s.Appends })
		counter("chronicler_store_events_deduplicated_total",
			"Events found already stored and not appended again (the replay window after a restart or reconnect).",
			func(s store.Stats) int64 { return s.Deduplicated })
		counter("chronicler_store_tail_reads_total",
			"Stream tail reads (a cold stream that already existed, or a wrong-expected-version).",
			func(s store.Stats) int64 { return s.TailReads })
		counter("chronicler_store_retries_total",
			"Transient store failures retried (with backoff).",
			func(s store.Stats) int64 { return s.Retries })
		counter("chronicler_store_conflicts_total",
			"Foreign writes found in a Chronicler stream (store.on_conflict says what follows).",
			func(s store.Stats) int64 { return s.Conflicts })
	}
}
