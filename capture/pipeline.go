package capture

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Appender is what the pipeline needs of the store (*store.Appender).
type Appender interface {
	Begin(tx contract.Tx) error
	Add(ctx context.Context, ev store.Event) error
	Commit(tx contract.Tx) error
	Abort(tx contract.Tx) error
	// SetDeadLetter: where and how to dead-letter what the store refuses
	// after Add accepted it (NewPipeline calls it, except under
	// OnErrorStop).
	SetDeadLetter(stream string, build func(store.Refused) store.Event)
}

// Pipeline is the capture [postgres.Sink]: it maps each change with the
// capture rules, hands the events to the store appender, dead-letters what a
// rule cannot map, and, from the appender's durable reports, confirms
// positions to the source and writes progress markers. See the package doc.
type Pipeline struct {
	cfg            Config
	progressStream string // contract.ProgressStream(cfg.Slot)
	app            Appender
	db             *store.Client
	m              *metrics
	buf            []mapping.Event

	durable atomic.Uint64 // highest durable LSN reported
	wake    chan struct{} // progress writer wake-up, capacity 1

	// rules is the set Change uses, owned by the source goroutine; next is a
	// set waiting for the next transaction boundary (SwapRules).
	rules     *mapping.RuleSet
	next      atomic.Pointer[mapping.RuleSet]
	swapped   chan struct{} // closed and replaced when a swap takes effect
	swappedMu sync.Mutex

	committed atomic.Uint64 // highest commit LSN handed to Commit
	acked     atomic.Uint64 // highest LSN confirmed to the source (Ack)
	lag       lagQueue
	txEvents  int // events of the open transaction

	mapped, unmatched, deadLettered, events atomic.Int64

	// schema is, per table, its columns as its changes last showed them
	// and the rules that read columns it lacks (schema.go). Owned by the
	// source goroutine.
	schema map[string]*tableSchema
}

var _ postgres.Sink = (*Pipeline)(nil)

// Stats are the pipeline's counters (deliveries, see metrics).
type Stats struct {
	Mapped       int64 // changes with at least one event and no failure
	Unmatched    int64 // changes no rule produced an event for
	DeadLettered int64 // dead-letter events written
	Events       int64 // rule events handed to the appender
}

// NewPipeline validates cfg and returns a Pipeline writing through app
// (whose OnDurable must call [Pipeline.Durable]) and writing progress
// markers and nothing else through db. storeStats, when not nil, feeds the
// chronicler_pipeline_events_stored_total and chronicler_store_* metrics
// (store.Appender.Stats).
func NewPipeline(cfg Config, app Appender, db *store.Client, storeStats func() store.Stats) (*Pipeline, error) {
	var errs []error
	if err := cfg.validate(); err != nil {
		errs = append(errs, err.(interface{ Unwrap() []error }).Unwrap()...)
	}
	if app == nil {
		errs = append(errs, &ConfigError{Field: "appender", Reason: "required"})
	}
	if db == nil {
		errs = append(errs, &ConfigError{Field: "store", Reason: "required: a KurrentDB client for progress markers"})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p := &Pipeline{
		cfg:            cfg,
		progressStream: contract.ProgressStream(cfg.Slot),
		app:            app,
		db:             db,
		wake:           make(chan struct{}, 1),
		rules:          cfg.Rules,
		swapped:        make(chan struct{}),
	}
	p.m = newMetrics(cfg.Registerer, storeStats, p.LagSeconds)
	if p.cfg.OnError != OnErrorStop {
		// Under OnErrorStop the appender stops on a refusal instead.
		app.SetDeadLetter(p.cfg.DeadLetterStream, p.refusedDeadLetter)
	}
	return p, nil
}

// Stats returns the counters.
func (p *Pipeline) Stats() Stats {
	return Stats{Mapped: p.mapped.Load(), Unmatched: p.unmatched.Load(), DeadLettered: p.deadLettered.Load(), Events: p.events.Load()}
}

// Begin implements postgres.Sink. A rule set given to SwapRules takes
// effect here, at a transaction boundary.
func (p *Pipeline) Begin(_ context.Context, tx contract.Tx) error {
	if rs := p.next.Swap(nil); rs != nil {
		p.rules = rs
		p.cfg.Logger.Info("capture rules swapped; they apply from this transaction on", "commit_lsn", tx.CommitLSN.String(), "files", len(rs.Files()), "capture_rules", len(rs.CaptureRules()))
		p.swappedMu.Lock()
		close(p.swapped)
		p.swapped = make(chan struct{})
		p.swappedMu.Unlock()
	}
	p.txEvents = 0
	return p.app.Begin(tx)
}

// Commit implements postgres.Sink.
func (p *Pipeline) Commit(_ context.Context, tx contract.Tx) error {
	if err := p.app.Commit(tx); err != nil {
		return err
	}
	p.m.txEvents.Observe(float64(p.txEvents))
	p.lag.push(tx, time.Now())
	raise(&p.committed, tx.CommitLSN)
	return nil
}

// SwapRules makes rs the capture rule set from the next transaction on
// (transactions already begun finish with the old set). rs must have been
// checked as at start ([Capture.LoadRules]). The returned channel is closed
// once the swap took effect. Safe for concurrent use; a later call before
// the swap replaces rs.
func (p *Pipeline) SwapRules(rs *mapping.RuleSet) <-chan struct{} {
	p.swappedMu.Lock()
	ch := p.swapped
	p.swappedMu.Unlock()
	p.next.Store(rs)
	return ch
}

// Committed is the highest commit LSN handed to Commit.
func (p *Pipeline) Committed() contract.LSN { return contract.LSN(p.committed.Load()) }

// Acked is the highest LSN confirmed to the source (after its progress
// marker was stored).
func (p *Pipeline) Acked() contract.LSN { return contract.LSN(p.acked.Load()) }

// LagSeconds is the capture lag: the age of the oldest transaction received
// and not yet confirmed, measured from its commit time (from its receipt
// for snapshot chunks, which have none); 0 when everything received is
// confirmed. Commit times come from the database server's clock, so a
// clock skew between it and this host shifts the figure.
func (p *Pipeline) LagSeconds() float64 { return p.lag.age(time.Now()).Seconds() }

// Abort implements postgres.Sink.
func (p *Pipeline) Abort(_ context.Context, tx contract.Tx) error { return p.app.Abort(tx) }

// Change implements postgres.Sink: rules, then appender; failures to the
// dead-letter stream (or a *StopError under OnErrorStop).
func (p *Pipeline) Change(ctx context.Context, ch *contract.Change) error {
	out, err := p.rules.CaptureExcept(ch, p.buf[:0], p.schemaGaps(ch))
	p.buf = out
	var failed mapping.EvalErrors
	if err != nil && !errors.As(err, &failed) {
		return fmt.Errorf("mapping change %d of transaction %s (%s): %w", ch.Ordinal, ch.Tx.CommitLSN, ch.QualifiedTable(), err)
	}
	dl := uint32(0) // dead letters written for this change
	for i := range out {
		e := &out[i]
		ev := store.Event{
			Stream: e.Stream,
			Type:   e.Type,
			Data:   e.Data,
			Source: contract.SourceOf(p.cfg.Slot, ch, e.Rule, uint32(e.Index)),
			Extra:  e.Metadata,
		}
		err := p.app.Add(ctx, ev)
		var tooLarge *store.TooLargeError
		if errors.As(err, &tooLarge) {
			if err := p.deadLetter(ctx, ch, &dl, e.Rule, "", contract.ReasonTooLarge, err); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		p.events.Add(1)
		p.m.events.Inc()
		p.m.ruleEvents.WithLabelValues(e.Rule).Inc()
		p.txEvents++
	}
	for _, f := range failed {
		if err := p.deadLetter(ctx, ch, &dl, f.Rule, f.Field, contract.ReasonRule, f); err != nil {
			return err
		}
	}
	switch {
	case dl > 0:
		p.m.changes.WithLabelValues("deadlettered").Inc()
	case len(out) > 0:
		p.mapped.Add(1)
		p.m.changes.WithLabelValues("mapped").Inc()
	default:
		p.unmatched.Add(1)
		p.m.changes.WithLabelValues("unmatched").Inc()
	}
	return nil
}

// Durable is the appender's OnDurable: everything up to lsn is stored. It
// wakes the progress writer ([Pipeline.Run]), which writes the progress
// marker and then confirms the LSN to the source (Config.Ack). Confirming
// after the marker keeps the marker at or past the confirmed position, so a
// crash can never leave the marker behind with nothing re-delivered to
// move it.
func (p *Pipeline) Durable(lsn contract.LSN) {
	raise(&p.durable, lsn)
	p.m.durableLSN.Set(float64(p.durable.Load()))
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// raise sets a to lsn when lsn is higher: a only grows, whichever of
// concurrent callers runs last.
func raise(a *atomic.Uint64, lsn contract.LSN) {
	for {
		cur := a.Load()
		if uint64(lsn) <= cur || a.CompareAndSwap(cur, uint64(lsn)) {
			return
		}
	}
}
