package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// Publisher subscribes to the store and publishes integration events.
type Publisher struct {
	cfg     Config
	kopts   []kgo.Opt
	mu      sync.Mutex
	stats   Stats
	running bool

	// next is a rule set waiting for the next batch boundary (SwapRules);
	// swapped is closed and replaced when one takes effect.
	next      atomic.Pointer[mapping.RuleSet]
	swappedMu sync.Mutex
	swapped   chan struct{}

	phase   atomic.Int32 // a Phase
	pending atomic.Int64 // store time (unix ns) of the oldest event read and not committed; 0: none
	nOpen   atomic.Int64 // events handled and not committed
}

// Phase is what a Publisher is doing.
type Phase int32

// The phases.
const (
	// PhaseStopped: Run is not running.
	PhaseStopped Phase = iota
	// PhaseStarting: connecting to Kafka, fencing, checking topics, reading
	// the checkpoint.
	PhaseStarting
	// PhaseRunning: subscribed and publishing.
	PhaseRunning
)

var phaseNames = [...]string{"stopped", "starting", "running"}

func (p Phase) String() string {
	if p >= 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "unknown"
}

// Phase returns what the Publisher is doing. Safe for concurrent use.
func (p *Publisher) Phase() Phase { return Phase(p.phase.Load()) }

// LagSeconds is the publish lag: now minus the store time (created date) of
// the oldest event read from the subscription and not yet committed to
// Kafka; 0 when everything read is committed. While catching up on old
// history it is the age of that history. Safe for concurrent use.
func (p *Publisher) LagSeconds() float64 {
	ns := p.pending.Load()
	if ns == 0 {
		return 0
	}
	return max(0, time.Since(time.Unix(0, ns)).Seconds())
}

// SwapRules makes rs the promotion rule set at the next batch boundary (the
// open batch is committed with the old set first). Per-event rules apply to
// the events read after the swap; transactions buffered at the swap are
// promoted by rs's transaction rules when their marker comes (and dropped
// if rs has none). When rs needs other events than the old set (another
// subscription filter), the subscription is restarted after the last event
// handled. The channel is closed once the swap took effect. Safe for
// concurrent use; a later call before the swap replaces rs.
func (p *Publisher) SwapRules(rs *mapping.RuleSet) <-chan struct{} {
	p.swappedMu.Lock()
	ch := p.swapped
	p.swappedMu.Unlock()
	p.next.Store(rs)
	return ch
}

// Stats are counters of one Publisher since New.
type Stats struct {
	Events      int // stored events handled
	Records     int // integration records committed
	DeadLetters int // dead letters committed
	Commits     int // batches committed
	Pending     int // stored events handled and not committed yet (the open batch)
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
	return &Publisher{cfg: cfg, kopts: kopts, swapped: make(chan struct{})}, nil
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats
	st.Pending = int(p.nOpen.Load())
	return st
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
	p.phase.Store(int32(PhaseStarting))
	defer p.phase.Store(int32(PhaseStopped))
	defer p.pending.Store(0)
	defer p.nOpen.Store(0)
	if m := p.cfg.Metrics; m != nil {
		defer m.LagSeconds.Set(0)
	}
	if rs := p.next.Swap(nil); rs != nil { // swapped before Run: nothing to drain
		p.cfg.Rules = rs
		p.tookSwap()
	}

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

	var (
		events  chan *esdb.RecordedEvent
		stopSub = func() {}
		wg      sync.WaitGroup
	)
	startSub := func(rs *mapping.RuleSet, from kafka.Resume) {
		var subCtx context.Context
		subCtx, stopSub = context.WithCancel(ctx)
		events = make(chan *esdb.RecordedEvent, 1024)
		wg.Add(1)
		go func(out chan *esdb.RecordedEvent) {
			defer wg.Done()
			subscribe(subCtx, p.cfg.Store, serverFilter(rs.Interest()), from, out, log)
		}(events)
	}
	startSub(p.cfg.Rules, from)
	defer func() { stopSub(); wg.Wait() }()
	p.phase.Store(int32(PhaseRunning))

	eng := newEngine(p.cfg.Rules, p.cfg.DeadLetterTopic, p.cfg.Kafka.MaxRecordBytes)
	var (
		outs    []output
		batch   []*kgo.Record
		rules   []string // the rule of each integration record in batch
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
	flush := func(ctx context.Context) error {
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
		began := time.Now()
		if err := p.commit(ctx, w, batch, next); err != nil {
			return err
		}
		if m := p.cfg.Metrics; m != nil {
			m.CommitSeconds.Observe(time.Since(began).Seconds())
			m.BatchRecords.Observe(float64(len(batch)))
			for _, r := range rules {
				m.RuleRecords.WithLabelValues(r).Inc()
			}
		}
		p.pending.Store(0)
		p.nOpen.Store(0)
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
		batch, rules, dead, handled, dirty = batch[:0], rules[:0], 0, 0, false
		return nil
	}
	// swap applies a rule set waiting in p.next; called with no batch open.
	swap := func() {
		rs := p.next.Swap(nil)
		if rs == nil {
			return
		}
		old := serverFilter(eng.rules.Interest())
		eng.swapRules(rs)
		p.cfg.Rules = rs
		if nf := serverFilter(rs.Interest()); !sameFilter(old, nf) {
			// Events already read were read with the old filter: read again
			// after the last one handled, with the new one.
			stopSub()
			wg.Wait()
			startSub(rs, last)
		}
		p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.RulesSwaps }, 1)
		log.Info("promotion rules swapped; they apply from the next event on", "after", last, "files", len(rs.Files()), "promotion_rules", len(rs.PromotionRules()))
		p.tookSwap()
	}
	for {
		select {
		case <-ctx.Done():
			if dirty && p.cfg.Grace > 0 {
				// Graceful stop: commit what was handled, within the grace.
				gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Grace)
				err := flush(gctx)
				cancel()
				if err != nil {
					return &GraceError{Grace: p.cfg.Grace, Records: len(batch), Err: err}
				}
				log.Info("graceful stop: open batch committed", "checkpoint", cp)
			}
			return nil
		case <-ticker.C:
			if dirty {
				if err := flush(ctx); err != nil {
					return stopErr(ctx, err)
				}
			}
			swap()
			if p.cfg.Metrics != nil {
				p.cfg.Metrics.LagSeconds.Set(p.LagSeconds())
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
				if o.dead == nil {
					rules = append(rules, o.rule)
				}
			}
			if !dirty {
				p.pending.Store(ev.CreatedDate.UnixNano())
			}
			handled++
			p.nOpen.Add(1)
			last = kafka.Resume{Commit: ev.Position.Commit, Prepare: ev.Position.Prepare}
			dirty = true
			// Commit when the batch is full, or when nothing more is queued
			// (group commit: events arriving during a commit form the next
			// batch, so batches grow with the load and an event waits at most
			// one commit, not a whole BatchInterval).
			if len(batch) >= p.cfg.BatchRecords || (p.cfg.FlushWhenIdle && len(events) == 0) {
				if err := flush(ctx); err != nil {
					return stopErr(ctx, err)
				}
				swap()
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

func (p *Publisher) tookSwap() {
	p.swappedMu.Lock()
	close(p.swapped)
	p.swapped = make(chan struct{})
	p.swappedMu.Unlock()
}

func sameFilter(a, b *esdb.SubscriptionFilter) bool {
	return a.Type == b.Type && a.Regex == b.Regex && slices.Equal(a.Prefixes, b.Prefixes)
}
