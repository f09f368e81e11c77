package capture

import (
	"github.com/prometheus/client_golang/prometheus"
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
}

func newMetrics(reg prometheus.Registerer, stored func() float64) *metrics {
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
	}
	for _, r := range []string{"mapped", "unmatched", "deadlettered"} {
		m.changes.WithLabelValues(r)
	}
	for _, r := range []string{"rule", "too_large"} {
		m.deadLetters.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.changes, m.events, m.deadLetters, m.durableLSN, m.progressLSN, m.progressErrs)
		if stored != nil {
			reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "chronicler_pipeline_events_stored_total",
				Help: "Events the store acknowledged (new appends; events found already stored are not counted).",
			}, stored))
		}
	}
	return m
}
