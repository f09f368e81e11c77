package publish

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the publisher's metrics. Register them with Register.
type Metrics struct {
	Records      prometheus.Counter
	DeadLetters  prometheus.Counter
	Transactions prometheus.Counter
	Events       prometheus.Counter
	CommitErrors prometheus.Counter
	// RuleRecords counts integration records committed, by promotion rule.
	RuleRecords *prometheus.CounterVec
	// BatchRecords is the number of records per committed Kafka transaction.
	BatchRecords prometheus.Histogram
	// CommitSeconds is the duration of a batch's commit (produce, checkpoint,
	// end transaction), retries included.
	CommitSeconds prometheus.Histogram
	// LagSeconds: see [Publisher.LagSeconds]; set every BatchInterval
	// while Run runs, also during a stuck commit.
	LagSeconds prometheus.Gauge
	// RulesSwaps counts rule sets swapped in by SwapRules.
	RulesSwaps prometheus.Counter
}

// NewMetrics creates the metrics (chronicler_publish_*).
func NewMetrics() *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "chronicler_publish_" + name, Help: help})
	}
	return &Metrics{
		Records:      c("records_total", "Integration records committed to Kafka."),
		DeadLetters:  c("dead_letters_total", "Events or records sent to the dead-letter topic."),
		Transactions: c("commits_total", "Kafka transactions (batches) committed."),
		Events:       c("events_total", "Stored events read from the subscription."),
		CommitErrors: c("commit_errors_total", "Failed commit attempts (retried)."),
		RuleRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicler_publish_rule_records_total", Help: "Integration records committed to Kafka, by promotion rule.",
		}, []string{"rule"}),
		BatchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronicler_publish_batch_records", Help: "Records (dead letters included) per committed Kafka transaction.",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000},
		}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chronicler_publish_commit_seconds", Help: "Duration of a batch's Kafka transaction (produce, checkpoint, commit), retries included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}),
		LagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_publish_lag_seconds", Help: "Publish lag: now minus the store time of the oldest event read and not yet committed to Kafka; 0 when all is committed.",
		}),
		RulesSwaps: c("rules_swaps_total", "Promotion rule sets swapped in by a reload."),
	}
}

// Register registers every metric with r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Records, m.DeadLetters, m.Transactions, m.Events, m.CommitErrors,
		m.RuleRecords, m.BatchRecords, m.CommitSeconds, m.LagSeconds, m.RulesSwaps} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) add(c func(*Metrics) prometheus.Counter, n int) {
	if m != nil && n > 0 {
		c(m).Add(float64(n))
	}
}
