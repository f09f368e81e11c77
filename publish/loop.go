package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// sink is where batches go: the Kafka writer (kafka.Writer), or a test's
// fake, so that the loop can be tested without Kafka.
type sink interface {
	// EnsureTopics checks, or creates, topics (kafka.EnsureTopics).
	EnsureTopics(ctx context.Context, cluster *kafka.ClusterConfig, topics []string) error
	// Checkpoint reads the last committed checkpoint; ok false: none.
	Checkpoint(ctx context.Context) (cp kafka.Checkpoint, ok bool, err error)
	// Commit writes records and checkpoint (one transaction in
	// exactly-once mode).
	Commit(ctx context.Context, recs []*kgo.Record, cp kafka.Checkpoint) error
	// EnsureCheckpointTopic re-creates the checkpoint topic if it is gone
	// (kafka.Writer.EnsureCheckpointTopic).
	EnsureCheckpointTopic(ctx context.Context) error
}

// loop is one Run's state: the subscription, the engine, the open batch and
// the positions. Its methods run on Run's goroutine only.
type loop struct {
	p      *Publisher
	w      sink
	log    *slog.Logger
	eng    *engine
	cp     kafka.Checkpoint   // the last committed checkpoint
	haveCP bool               // false: none committed yet
	last   contract.StoreFrom // after the last event handled
	b      batch
	outs   []output
	topics map[string]bool // topics checked or created
	// record, when set, writes the publisher's record to the store
	// (Publisher.writePublished): due once a checkpoint is committed.
	record func(context.Context, kafka.Checkpoint) error

	events  chan *store.Recorded
	stopSub context.CancelFunc
	subs    sync.WaitGroup
}

func newLoop(p *Publisher, w sink, cp kafka.Checkpoint, ok bool, topics []string) *loop {
	l := &loop{p: p, w: w, log: p.cfg.Logger.With("publisher", p.cfg.PublisherID), cp: cp, haveCP: ok,
		eng: newEngine(p.cfg.Rules, p.cfg.DeadLetterTopic, p.cfg.Kafka.MaxRecordBytes), topics: map[string]bool{}}
	for _, t := range topics {
		l.topics[t] = true
	}
	// through: per-event promotions of events at or before it are
	// committed. last starts where a re-read must start, to rebuild the
	// open transactions too.
	l.last = contract.StoreFrom{Start: true}
	if ok {
		l.last = contract.After(cp.StorePos)
		if cp.Resume != nil {
			l.last = *cp.Resume
		}
	}
	return l
}

// subscribe starts a $all subscription for rs's interest after from.
func (l *loop) subscribe(ctx context.Context, rs *mapping.RuleSet, from contract.StoreFrom) {
	subCtx, stop := context.WithCancel(ctx)
	l.stopSub = stop
	l.events = make(chan *store.Recorded, 1024)
	l.subs.Add(1)
	go func(out chan *store.Recorded) {
		defer l.subs.Done()
		l.p.cfg.Store.Subscribe(subCtx, serverFilter(rs.Interest()), from, out, l.log)
	}(l.events)
}

func (l *loop) stopSubscription() {
	l.stopSub()
	l.subs.Wait()
}

// run handles events and commits batches until ctx ends or a permanent
// error.
func (l *loop) run(ctx context.Context) error {
	cfg := &l.p.cfg
	ticker := time.NewTicker(cfg.BatchInterval)
	defer ticker.Stop()
	for {
		if ctx.Err() != nil { // also when events are ready: stop handling
			return l.stop(ctx)
		}
		select {
		case <-ctx.Done():
			return l.stop(ctx)
		case <-ticker.C:
			if !l.b.empty() {
				if err := l.flushGraceful(ctx); err != nil {
					return err
				}
			}
			if err := l.swap(ctx); err != nil {
				return stopErr(ctx, err)
			}
		case ev := <-l.events:
			if err := l.handle(ev); err != nil {
				return err
			}
			// Commit when the batch is full, or when nothing more is queued
			// (group commit: events arriving during a commit form the next
			// batch, so batches grow with the load and an event waits at
			// most one commit, not a whole BatchInterval).
			if len(l.b.recs) >= cfg.BatchRecords || (cfg.FlushWhenIdle && len(l.events) == 0) {
				if err := l.flushGraceful(ctx); err != nil {
					return err
				}
				if err := l.swap(ctx); err != nil {
					return stopErr(ctx, err)
				}
			}
		}
	}
}

// flushGraceful commits the open batch. When ctx ends (a graceful stop)
// during the commit, the commit goes on for up to Grace: a batch not
// committed by then is abandoned and reported (*GraceError), never a
// silent nil; with Grace 0 it is left at once, as stop leaves it.
func (l *loop) flushGraceful(ctx context.Context) error {
	grace := l.p.cfg.Grace
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel() // also ends the grace timer below
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-cctx.Done():
		}
	})
	defer stop()
	err := l.flush(cctx)
	if err == nil || ctx.Err() == nil {
		return err
	}
	if grace <= 0 {
		return nil
	}
	return &GraceError{Grace: grace, Records: len(l.b.recs), Err: err}
}

// stop ends Run: with a grace, the open batch is committed first.
func (l *loop) stop(ctx context.Context) error {
	grace := l.p.cfg.Grace
	if l.b.empty() || grace <= 0 {
		return nil
	}
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := l.flush(gctx); err != nil {
		return &GraceError{Grace: grace, Records: len(l.b.recs), Err: err}
	}
	l.log.Info("graceful stop: open batch committed", "checkpoint", l.cp)
	return nil
}

// after reports whether pos is past the committed checkpoint: its
// per-event outputs are not published yet.
func (l *loop) after(pos contract.StorePos) bool { return !l.haveCP || l.cp.StorePos.Less(pos) }

// handle promotes one event into the open batch.
func (l *loop) handle(ev *store.Recorded) error {
	cfg := &l.p.cfg
	emit := l.after(ev.Pos)
	var err error
	if l.outs, err = l.eng.handle(ev, l.last, emit, emit, l.outs[:0]); err != nil {
		// A malformed progress marker: capture wrote it, so this is a bug
		// or a foreign writer in chronicler-progress-*.
		return err
	}
	if len(l.eng.open) > cfg.MaxOpenTransactions {
		return fmt.Errorf("at $all position %d: %w: %d > publish.maxOpenTransactions", ev.Pos.Commit, ErrTooManyOpenTransactions, len(l.eng.open))
	}
	for _, o := range l.outs {
		if o.dead != nil {
			if cfg.StopOnDeadLetter {
				return o.dead
			}
			l.log.Warn("dead letter", "stream", o.dead.Stream, "event", o.dead.EventID, "rule", o.dead.Rule, "err", o.dead.Cause)
		}
		l.b.add(o)
	}
	if l.b.handled == 0 {
		l.p.pending.Store(ev.Created.UnixNano())
	}
	l.b.handled++
	l.p.nOpen.Add(1)
	l.last = contract.After(ev.Pos)
	return nil
}

// next is the checkpoint that commits the open batch: through the last
// event handled, and before the oldest open transaction.
func (l *loop) next() kafka.Checkpoint {
	next := kafka.Checkpoint{StorePos: l.cp.StorePos}
	if !l.last.Start && l.after(l.last.StorePos) {
		next.StorePos = l.last.StorePos
	}
	if r, open := l.eng.resume(); open {
		next.Resume = &r
	}
	return next
}

// flush commits the open batch with its checkpoint.
func (l *loop) flush(ctx context.Context) error {
	var missing []string
	for _, r := range l.b.recs {
		if !l.topics[r.Topic] {
			l.topics[r.Topic] = true
			missing = append(missing, r.Topic)
		}
	}
	if len(missing) > 0 {
		if err := l.w.EnsureTopics(ctx, &l.p.cfg.Kafka, missing); err != nil {
			return err
		}
	}
	next := l.next()
	began := time.Now()
	if err := l.commit(ctx, next); err != nil {
		return err
	}
	took := time.Since(began)
	l.cp, l.haveCP = next, true
	// Before Stats show the commit: whoever waits for it finds the record
	// in the store (it is an event of $all, which the publisher reads and
	// commits past like any event without output).
	l.recordPublished(ctx)
	l.p.committed(&l.b, next, took)
	l.b.reset()
	return nil
}

// recordPublished writes the publisher's record if it is due; a failure is
// logged and the write tried again after the next commit.
func (l *loop) recordPublished(ctx context.Context) {
	if l.record == nil {
		return
	}
	if err := l.record(ctx, l.cp); err != nil {
		l.log.Warn("the store does not record yet that this publisher has published; retried after the next commit", "err", err)
		return
	}
	l.record = nil
}

// commit commits the open batch, retrying until it is committed, the
// writer is fenced, or ctx ends. A failed commit whose outcome is unknown is
// resolved by reading the checkpoint back: if it is this batch's, the batch
// is in.
func (l *loop) commit(ctx context.Context, cp kafka.Checkpoint) error {
	cfg := &l.p.cfg
	var backoff retry.Backoff
	for {
		err := l.w.Commit(ctx, l.b.recs, cp)
		if err == nil {
			return nil
		}
		if errors.Is(err, kafka.ErrFenced) {
			l.log.Error("fenced: a newer instance of this publisher took over its transactional id; stopping without committing the open batch (the newer instance publishes it)", "records", len(l.b.recs))
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.CommitErrors }, 1)
		if terr := l.recheckTopics(ctx); terr != nil {
			return terr
		}
		l.log.Warn("commit failed; retrying", "records", len(l.b.recs), "err", err, "backoff", backoff.Next())
		if cfg.Mode == kafka.ExactlyOnce {
			got, ok, rerr := l.w.Checkpoint(ctx)
			if rerr == nil && ok && sameCheckpoint(got, cp) {
				return nil
			}
		}
		if !backoff.Wait(ctx) {
			return ctx.Err()
		}
	}
}

// recheckTopics runs after a failed commit: a topic deleted under a
// running publisher fails every commit (UNKNOWN_TOPIC_OR_PARTITION), which
// would be retried forever. The batch's topics are checked again: a
// missing one is re-created with kafka.ClusterConfig.CreateTopics, else its
// *kafka.TopicError is returned and Run stops with it. The checkpoint topic
// is re-created (as at start): the running publisher's next commit writes
// its checkpoint there. A failure to reach Kafka is no answer: the commit
// is retried.
func (l *loop) recheckTopics(ctx context.Context) error {
	seen := map[string]bool{}
	var topics []string
	for _, r := range l.b.recs {
		if !seen[r.Topic] {
			seen[r.Topic] = true
			topics = append(topics, r.Topic)
		}
	}
	if len(topics) > 0 {
		err := l.w.EnsureTopics(ctx, &l.p.cfg.Kafka, topics)
		var te *kafka.TopicError
		if errors.As(err, &te) {
			return err
		}
	}
	if err := l.w.EnsureCheckpointTopic(ctx); err != nil {
		l.log.Warn("checking the checkpoint topic", "topic", l.p.cfg.CheckpointTopic, "err", err)
	}
	return nil
}

func sameCheckpoint(a, b kafka.Checkpoint) bool {
	if a.StorePos != b.StorePos || (a.Resume == nil) != (b.Resume == nil) {
		return false
	}
	return a.Resume == nil || *a.Resume == *b.Resume
}

// swap applies a rule set waiting in p.next; called with no batch open.
// Its schemas' ids come from the registry (cached: the reload's check
// registered them); a registry that fails here stops the publisher.
func (l *loop) swap(ctx context.Context) error {
	rs := l.p.next.Swap(nil)
	if rs == nil {
		return nil
	}
	ids, err := l.p.resolveSchemas(ctx, rs)
	if err != nil {
		return err
	}
	old := serverFilter(l.eng.rules.Interest())
	l.eng.swapRules(rs)
	l.eng.schemaIDs = ids
	l.p.cfg.Rules = rs
	if !old.Equal(serverFilter(rs.Interest())) {
		// Events already read were read with the old filter: read again
		// after the last one handled, with the new one.
		l.stopSubscription()
		l.subscribe(ctx, rs, l.last)
	}
	l.p.cfg.Metrics.add(func(m *Metrics) prometheus.Counter { return m.RulesSwaps }, 1)
	l.log.Info("promotion rules swapped; they apply from the next event on", "after", l.last, "files", len(rs.Files()), "promotion_rules", len(rs.PromotionRules()))
	l.p.tookSwap()
	return nil
}
