package publish

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
// concurrent use; a later call before the swap replaces rs. With a schema
// registry, call CheckSchemas first: a set whose schemas the registry
// refuses at the swap stops Run with that error.
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
	kopts, err := cfg.Kafka.ProducerOpts()
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

// Run publishes until ctx ends (returning nil, or a *GraceError when a
// batch was abandoned) or a permanent error: the schema registry refused a
// rule's schema or could not be asked (*registry.IncompatibleError,
// *registry.RequestError, ...), the writer was fenced (kafka.ErrFenced), a
// topic is missing at start or was deleted while running, without
// CreateTopics (*kafka.TopicError), a dead letter with StopOnDeadLetter
// (*DeadLetterError). Run may be called once at a time; a second Run after
// the first returned starts over from the checkpoint.
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
	// Before anything is fenced: a rule set the registry refuses must not
	// stop a publisher that still runs.
	ids, err := p.resolveSchemas(ctx, p.cfg.Rules)
	if err != nil {
		return stopErr(ctx, err)
	}
	w, err := kafka.New(ctx, kafka.Config{
		Brokers: p.cfg.Kafka.Brokers, PublisherID: p.cfg.PublisherID, CheckpointTopic: p.cfg.CheckpointTopic,
		CheckpointReplication: p.cfg.Kafka.ReplicationFactor, Mode: p.cfg.Mode, ClientOpts: p.kopts, Logger: p.cfg.Logger,
	})
	if err != nil {
		return stopErr(ctx, err)
	}
	defer w.Close()
	l, err := p.start(ctx, w)
	if err != nil {
		return stopErr(ctx, err)
	}
	defer l.stopSubscription()
	l.eng.schemaIDs = ids
	if m := p.cfg.Metrics; m != nil {
		defer p.reportLag(m)()
	}
	p.phase.Store(int32(PhaseRunning))
	return l.run(ctx)
}

// reportLag sets the lag gauge every BatchInterval from a goroutine of its
// own, so it grows while the loop is stuck in a commit (a stalled broker, a
// commit retried), and returns its stop.
func (p *Publisher) reportLag(m *Metrics) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(p.cfg.BatchInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				m.LagSeconds.Set(p.LagSeconds())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// start checks the topics, reads the checkpoint and subscribes after it.
func (p *Publisher) start(ctx context.Context, w sink) (*loop, error) {
	topics := append(p.cfg.Rules.Topics(), p.cfg.DeadLetterTopic)
	if err := w.EnsureTopics(ctx, &p.cfg.Kafka, topics); err != nil {
		return nil, err
	}
	cp, ok, err := w.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the checkpoint of publisher %s: %w", p.cfg.PublisherID, err)
	}
	rec, err := p.readPublished(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.checkMissing(ok, rec); err != nil {
		return nil, err
	}
	l := newLoop(p, w, cp, ok, topics)
	if rec == nil || rec.CheckpointTopic != p.cfg.CheckpointTopic {
		// Recorded after a checkpoint exists: now, or after the first commit.
		l.record = p.writePublished
		if ok {
			l.recordPublished(ctx)
		}
	}
	l.log.Info("publisher starting", "checkpoint", cp, "have_checkpoint", ok, "resume", l.last, "mode", p.cfg.Mode.String())
	l.subscribe(ctx, p.cfg.Rules, l.last)
	return l, nil
}

func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *Publisher) tookSwap() {
	p.swappedMu.Lock()
	close(p.swapped)
	p.swapped = make(chan struct{})
	p.swappedMu.Unlock()
}
