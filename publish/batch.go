package publish

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// batch is the open Kafka transaction's content: its records (integration
// events and dead letters) and what they count.
type batch struct {
	recs    []*kgo.Record
	rules   []string // the promotion rule of each integration record
	dead    int      // dead letters among recs
	handled int      // stored events handled into the batch
}

func (b *batch) add(o output) {
	b.recs = append(b.recs, o.rec)
	if o.dead != nil {
		b.dead++
	} else {
		b.rules = append(b.rules, o.rule)
	}
}

// empty reports whether no event was handled since the last commit (a
// handled event with no output still moves the checkpoint).
func (b *batch) empty() bool { return b.handled == 0 }

func (b *batch) reset() {
	b.recs, b.rules, b.dead, b.handled = b.recs[:0], b.rules[:0], 0, 0
}

// committed counts a committed batch in Stats and the metrics.
func (p *Publisher) committed(b *batch, cp kafka.Checkpoint, took time.Duration) {
	if m := p.cfg.Metrics; m != nil {
		m.CommitSeconds.Observe(took.Seconds())
		m.BatchRecords.Observe(float64(len(b.recs)))
		for _, r := range b.rules {
			m.RuleRecords.WithLabelValues(r).Inc()
		}
	}
	p.pending.Store(0)
	p.nOpen.Store(0)
	p.mu.Lock()
	p.stats.Records += len(b.recs) - b.dead
	p.stats.DeadLetters += b.dead
	p.stats.Events += b.handled
	p.stats.Commits++
	p.stats.Through = cp
	p.mu.Unlock()
	p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.Records }, len(b.recs)-b.dead)
	p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.DeadLetters }, b.dead)
	p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.Events }, b.handled)
	p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.Transactions }, 1)
}
