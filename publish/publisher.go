package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// Publisher subscribes to the store and publishes integration events.
type Publisher struct {
	cfg     Config
	kopts   []kgo.Opt
	mu      sync.Mutex
	stats   Stats
	running bool
}

// Stats are counters of one Publisher since New.
type Stats struct {
	Events      int // stored events handled
	Records     int // integration records committed
	DeadLetters int // dead letters committed
	Commits     int // batches committed
	Through     kafka.Checkpoint
}

// New validates cfg (reporting every problem) and returns a Publisher.
// Nothing is connected until Run.
func New(cfg Config) (*Publisher, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	kopts, err := cfg.Kafka.clientOpts()
	if err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg, kopts: kopts}, nil
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Run publishes until ctx ends (returning nil) or a permanent error: the
// writer was fenced (kafka.ErrFenced), a topic is missing (*TopicError), a
// dead letter with StopOnDeadLetter (*DeadLetterError). Run may be called
// once at a time; a second Run after the first returned starts over from
// the checkpoint.
func (p *Publisher) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("publish: Run is already running")
	}
	p.running = true
	p.mu.Unlock()
	defer func() { p.mu.Lock(); p.running = false; p.mu.Unlock() }()

	log := p.cfg.Logger.With("publisher", p.cfg.PublisherID)
	w, err := kafka.New(ctx, kafka.Config{
		Brokers: p.cfg.Kafka.Brokers, PublisherID: p.cfg.PublisherID, CheckpointTopic: p.cfg.CheckpointTopic,
		CheckpointReplication: p.cfg.Kafka.ReplicationFactor, Mode: p.cfg.Mode, ClientOpts: p.kopts, Logger: p.cfg.Logger,
		BeforeEnd: p.cfg.beforeEnd,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer w.Close()
	adm := kadm.NewClient(w.Client())
	topics := append(p.cfg.Rules.Topics(), p.cfg.DeadLetterTopic)
	if err := ensureTopics(ctx, adm, &p.cfg.Kafka, topics); err != nil {
		return stopErr(ctx, err)
	}
	checked := map[string]bool{}
	for _, t := range topics {
		checked[t] = true
	}

	cp, ok, err := w.Checkpoint(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("reading the checkpoint of publisher %s: %w", p.cfg.PublisherID, err)
	}
	// through: per-event promotions of events at or before it are committed.
	// from: where to re-read, to rebuild open transactions too.
	from := kafka.Resume{Start: true}
	if ok {
		from = kafka.Resume{Commit: cp.Commit, Prepare: cp.Prepare}
		if cp.Resume != nil {
			from = *cp.Resume
		}
	}
	log.Info("publisher starting", "checkpoint", cp, "have_checkpoint", ok, "resume", from, "mode", p.cfg.Mode.String())

	subCtx, stopSub := context.WithCancel(ctx)
	events := make(chan *esdb.RecordedEvent, 1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		subscribe(subCtx, p.cfg.Store, serverFilter(p.cfg.Rules.Interest()), from, events, log)
	}()
	defer func() { stopSub(); wg.Wait() }()

	eng := newEngine(p.cfg.Rules, p.cfg.DeadLetterTopic, p.cfg.Kafka.MaxRecordBytes)
	var (
		outs    []output
		batch   []*kgo.Record
		dead    int
		handled int
		last    = from
		dirty   bool
		ticker  = time.NewTicker(p.cfg.BatchInterval)
	)
	defer ticker.Stop()
	after := func(pos esdb.Position) bool {
		return !ok || pos.Commit > cp.Commit || (pos.Commit == cp.Commit && pos.Prepare > cp.Prepare)
	}
	flush := func() error {
		next := kafka.Checkpoint{Commit: cp.Commit, Prepare: cp.Prepare}
		if !last.Start && (!ok || after(esdb.Position{Commit: last.Commit, Prepare: last.Prepare})) {
			next.Commit, next.Prepare = last.Commit, last.Prepare
		}
		if r, open := eng.resume(); open {
			next.Resume = &r
		}
		var missing []string
		for _, r := range batch {
			if !checked[r.Topic] {
				checked[r.Topic] = true
				missing = append(missing, r.Topic)
			}
		}
		if len(missing) > 0 {
			if err := ensureTopics(ctx, adm, &p.cfg.Kafka, missing); err != nil {
				return err
			}
		}
		if err := p.commit(ctx, w, batch, next); err != nil {
			return err
		}
		cp, ok = next, true
		p.mu.Lock()
		p.stats.Records += len(batch) - dead
		p.stats.DeadLetters += dead
		p.stats.Events += handled
		p.stats.Commits++
		p.stats.Through = next
		p.mu.Unlock()
		p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.Records }, len(batch)-dead)
		p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.DeadLetters }, dead)
		p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.Events }, handled)
		p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.Transactions }, 1)
		batch, dead, handled, dirty = batch[:0], 0, 0, false
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			if dirty {
				if err := flush(); err != nil {
					return stopErr(ctx, err)
				}
			}
		case ev := <-events:
			emit := after(ev.Position)
			outs, err = eng.handle(ev, last, emit, emit, outs[:0])
			if err != nil {
				// A malformed progress marker: capture wrote it, so this is
				// a bug or a foreign writer in chronicler-progress-*.
				return err
			}
			if len(eng.open) > p.cfg.MaxOpenTransactions {
				return fmt.Errorf("at $all position %d: %w: %d > publish.maxOpenTransactions", ev.Position.Commit, ErrTooManyOpenTransactions, len(eng.open))
			}
			for _, o := range outs {
				if o.dead != nil {
					if p.cfg.StopOnDeadLetter {
						return o.dead
					}
					dead++
					log.Warn("dead letter", "stream", o.dead.Stream, "event", o.dead.EventID, "rule", o.dead.Rule, "err", o.dead.Cause)
				}
				batch = append(batch, o.rec)
			}
			handled++
			last = kafka.Resume{Commit: ev.Position.Commit, Prepare: ev.Position.Prepare}
			dirty = true
			if len(batch) >= p.cfg.BatchRecords {
				if err := flush(); err != nil {
					return stopErr(ctx, err)
				}
			}
		}
	}
}

func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// commit commits one batch, retrying until it is committed, the writer is
// fenced, or ctx ends. A failed commit whose outcome is unknown is resolved
// by reading the checkpoint back: if it is this batch's, the batch is in.
func (p *Publisher) commit(ctx context.Context, w *kafka.Writer, batch []*kgo.Record, cp kafka.Checkpoint) error {
	backoff := 100 * time.Millisecond
	for {
		err := w.Commit(ctx, batch, cp)
		if err == nil {
			return nil
		}
		if errors.Is(err, kafka.ErrFenced) || errors.Is(err, errSimulatedCrash) || ctx.Err() != nil {
			return err
		}
		p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.CommitErrors }, 1)
		p.cfg.Logger.Warn("commit failed; retrying", "publisher", p.cfg.PublisherID, "records", len(batch), "err", err)
		if p.cfg.Mode == kafka.ExactlyOnce {
			got, ok, rerr := w.Checkpoint(ctx)
			if rerr == nil && ok && sameCheckpoint(got, cp) {
				return nil
			}
		}
		if !sleepCtx(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func sameCheckpoint(a, b kafka.Checkpoint) bool {
	if a.Commit != b.Commit || a.Prepare != b.Prepare || (a.Resume == nil) != (b.Resume == nil) {
		return false
	}
	return a.Resume == nil || *a.Resume == *b.Resume
}
