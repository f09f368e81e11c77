package publish

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the publisher's counters. Register them with Register.
type Metrics struct {
	Records      prometheus.Counter
	DeadLetters  prometheus.Counter
	Transactions prometheus.Counter
	Events       prometheus.Counter
	CommitErrors prometheus.Counter
}

// NewMetrics creates the counters (chronicler_publish_*).
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
	}
}

// Register registers every counter with r.
func (m *Metrics) Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.Records, m.DeadLetters, m.Transactions, m.Events, m.CommitErrors} {
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
