package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Event is one low-level event to append.
type Event struct {
	Stream string
	Type   string
	Data   []byte // JSON
	// Source is where the event came from; its contract.Pos names the event (its id
	// is contract.EventID(slot, contract.Pos), or contract.SnapshotEventID for
	// a snapshot row's event) and orders it in its stream. The appender sets
	// Source.Slot to its own slot.
	Source contract.Source
	// Extra is the rule's own metadata, written beside Source's keys
	// (contract.AppendMetadata), nil when the rule has none.
	Extra map[string]any
	// Recheck, when not zero, says the event (a snapshot row's: its id is
	// contract.SnapshotEventID, not its position's) may already be in the
	// stream, appended after this commit LSN by a run that stopped before
	// it saved the chunk's progress: before appending it the appender
	// reads the stream back to that position and drops it if its id is
	// there (see the package doc, Snapshot rows).
	Recheck contract.LSN
}

// item is a queued event, ready to send.
type item struct {
	ev        proposed // encoded for BatchAppend; its metadata and data are slices of it
	id        uuid.UUID
	typ       string
	pos       contract.Pos
	recheck   contract.LSN // Event.Recheck
	size      int          // for MaxBatchBytes and MaxPendingBytes
	storeSize int          // as the store counts it against its limits (storeSize)
	tx        *txState
	// dl: for the dead-letter stream, held back while events before it may
	// still be refused (refused.go); replacement: the shortened form of a
	// refused dead letter; alone: appended in an append of its own (it was
	// in a refused append of several events).
	dl, replacement, alone bool
}

// txState tracks one source transaction until it is durable.
type txState struct {
	lsn         contract.LSN
	outstanding int  // events added and not yet acknowledged by the store
	data        int  // of which not for the dead-letter stream (see heldLocked)
	committed   bool // Commit was called (or Abort)
	aborted     bool // Abort was called: never reported durable
}

// streamQ is one stream's queue. At most one append per stream is in
// flight (busy), which keeps the stream's order.
type streamQ struct {
	name  string
	queue []*item
	busy  bool
	ready bool // in Appender.ready
	held  bool // the dead-letter stream, waiting (see heldLocked)
}

// Appender appends events to their streams; see the package doc.
type Appender struct {
	cfg   Config
	db    *esdb.Client
	batch *batchConn // nil: every append through db.AppendToStream

	mu       sync.Mutex
	changed  chan struct{} // closed whenever state changes (changedLocked makes it)
	streams  map[string]*streamQ
	ready    []*streamQ // streams with queued events and no append in flight
	known    *known
	txs      []*txState // open and not-yet-durable transactions, in commit order
	cur      *txState   // between Begin and Commit
	pending  int        // bytes of queued + in-flight events
	inflight int
	durable  contract.LSN
	nDurable int64           // transactions that became durable, for reporting
	err      error           // fatal error; set once (setErrLocked)
	failed   chan struct{}   // closed when err is set
	runCtx   context.Context // set by Run
	stopping bool            // Run is ending: no append starts
	wg       sync.WaitGroup  // append workers
	jobs     chan appendJob  // to an idle worker

	repMu     sync.Mutex // serialises OnDurable calls
	nReported int64

	limits   storeLimits         // learned from the store's refusals
	dlStream string              // SetDeadLetter
	dlBuild  func(Refused) Event // nil: a refusal is fatal

	stats Stats
}

// Stats are counters for metrics and tests. Read them with Appender.Stats.
type Stats struct {
	Appends        int64 // successful append calls
	BatchAppends   int64 // of which through BatchAppend
	Events         int64 // events stored
	Deduplicated   int64 // events found already stored (replay window, snapshot rows read again)
	TailReads      int64 // stream tail reads
	Retries        int64 // transient failures retried
	Conflicts      int64 // foreign writes seen
	MaxPending     int   // high-water mark of pending bytes
	MaxInFlightSet int   // high-water mark of concurrent appends
}

// New validates cfg and returns an Appender on c. Run must be started.
func New(c *Client, cfg Config) (*Appender, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("store: no KurrentDB client")
	}
	var conf *esdb.Configuration
	if cfg.BatchAppend {
		conf = c.conf
	}
	batch, err := newBatchConn(conf, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return &Appender{
		cfg:     cfg,
		db:      c.db,
		batch:   batch,
		streams: make(map[string]*streamQ),
		known:   newKnown(cfg.WarmStreams),
		jobs:    make(chan appendJob),
		failed:  make(chan struct{}),
	}, nil
}

// Run appends until ctx is cancelled or a fatal error occurs (a conflict
// under ConflictStop, a deleted stream). It waits for its append goroutines
// before returning. Events not acknowledged by then are not durable and
// were never reported: capture re-delivers them after a restart.
func (a *Appender) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.mu.Lock()
	if a.runCtx != nil {
		a.mu.Unlock()
		return errors.New("store: Run called twice")
	}
	a.runCtx = ctx
	a.dispatchLocked()
	a.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-a.failed:
		cancel()
	}
	// No append starts after this (a.wg.Add is only called under a.mu,
	// by dispatchLocked); those sent without a goroutine waiting
	// (startAsync) end when the call does: close it before waiting.
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	if a.batch != nil {
		_ = a.batch.Close()
	}
	a.wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.setErrLocked(ErrClosed)
		a.broadcastLocked()
		return ctx.Err()
	}
	if errors.Is(a.err, ErrClosed) {
		return ctx.Err()
	}
	return a.err
}

// Begin starts a source transaction. Transactions come in commit order,
// except that capture may re-deliver transactions after a reconnect: their
// events are dropped where the stream already holds them.
func (a *Appender) Begin(tx contract.Tx) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	if a.cur != nil {
		return fmt.Errorf("store: Begin(%s) while transaction %s is open", tx.CommitLSN, a.cur.lsn)
	}
	a.cur = &txState{lsn: tx.CommitLSN}
	a.txs = append(a.txs, a.cur)
	return nil
}

// Add queues an event of the open transaction. It blocks while the pending
// bytes are over MaxPendingBytes (backpressure) or until ctx is done.
func (a *Appender) Add(ctx context.Context, ev Event) error {
	it, err := a.prepare(ev)
	if err != nil {
		return err
	}
	a.mu.Lock()
	for a.err == nil && a.pending > 0 && a.pending+it.size > a.cfg.MaxPendingBytes {
		ch := a.changedLocked()
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
		a.mu.Lock()
	}
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	if a.cur == nil {
		return fmt.Errorf("store: Add(%s) outside a transaction", ev.Stream)
	}
	it.tx = a.cur
	it.dl = a.dlStream != "" && ev.Stream == a.dlStream
	a.cur.outstanding++
	if !it.dl {
		a.cur.data++
	}
	a.pending += it.size
	a.stats.MaxPending = max(a.stats.MaxPending, a.pending)
	s := a.streams[ev.Stream]
	if s == nil {
		s = &streamQ{name: ev.Stream}
		a.streams[ev.Stream] = s
	}
	s.queue = append(s.queue, it)
	if !s.busy && !s.ready {
		s.ready = true
		a.ready = append(a.ready, s)
	}
	a.dispatchLocked()
	return nil
}

// Commit ends the open transaction; it becomes durable when all its events
// are stored (at once, if it had none).
func (a *Appender) Commit(tx contract.Tx) error {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		return a.err
	}
	if a.cur == nil || a.cur.lsn != tx.CommitLSN {
		a.mu.Unlock()
		return fmt.Errorf("store: Commit(%s) does not match the open transaction", tx.CommitLSN)
	}
	a.cur.committed = true
	a.cur = nil
	a.advanceLocked()
	a.mu.Unlock()
	a.report()
	return nil
}

// Abort drops the open transaction: capture lost its connection in the middle
// of it and will deliver it again whole. Its events already queued or stored
// stay (they are the same events; the re-delivery's copies are dropped as
// duplicates); the aborted transaction itself is never reported durable.
func (a *Appender) Abort(tx contract.Tx) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil {
		return nil
	}
	a.cur.committed, a.cur.aborted = true, true
	a.cur = nil
	a.advanceLocked()
	return nil
}

// Durable returns the highest durable commit LSN so far.
func (a *Appender) Durable() contract.LSN {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.durable
}

// Stats returns a snapshot of the counters.
func (a *Appender) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

var metaScratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// prepare encodes ev into an item (outside the lock: encoding is the
// expensive part).
func (a *Appender) prepare(ev Event) (*item, error) {
	if !utf8.ValidString(ev.Type) {
		// gRPC string fields must be UTF-8: the store would refuse the request.
		return nil, fmt.Errorf("event type %q for stream %s is not valid UTF-8: fix the rule's type", ev.Type, ev.Stream)
	}
	// The metadata is encoded into a scratch buffer, then the whole event
	// into one buffer of its exact size (encodeProposed): every queued
	// event stays in memory until it is stored, and a buffer's spare
	// capacity was a fifth of it.
	scratch := metaScratch.Get().(*[]byte)
	defer metaScratch.Put(scratch)
	ev.Source.Slot = a.cfg.Slot
	mb, err := contract.AppendMetadata((*scratch)[:0], &ev.Source, ev.Extra)
	if err != nil {
		return nil, fmt.Errorf("encoding metadata of an event for %s: %w", ev.Stream, err)
	}
	*scratch = mb
	size := len(ev.Data) + len(mb) + len(ev.Type) + 64
	if size > a.cfg.MaxBatchBytes {
		return nil, &TooLargeError{Stream: ev.Stream, Size: size, Limit: a.cfg.MaxBatchBytes}
	}
	ss := storeSize(ev.Type, ev.Data, mb)
	if err := a.checkStoreLimits(ev.Stream, ss); err != nil {
		return nil, err
	}
	id := uuid.UUID(ev.Source.EventID())
	return &item{
		ev:        encodeProposed(id, ev.Type, esdb.ContentTypeJson, mb, ev.Data),
		id:        id,
		typ:       ev.Type,
		pos:       ev.Source.Pos,
		recheck:   ev.Recheck,
		size:      size,
		storeSize: ss,
	}, nil
}

// eventData is it as the official client's AppendToStream takes it.
func (it *item) eventData() esdb.EventData {
	return esdb.EventData{EventID: it.id, EventType: it.typ, ContentType: esdb.ContentTypeJson, Data: it.ev.payload(), Metadata: it.ev.metadata()}
}

// report calls OnDurable when more transactions became durable, one call at
// a time. The LSN can repeat (snapshot chunks share the consistent point as
// their commit LSN, and capture waits for an Ack after each) but never goes
// backwards.
func (a *Appender) report() {
	a.repMu.Lock()
	defer a.repMu.Unlock()
	a.mu.Lock()
	d, n := a.durable, a.nDurable
	a.mu.Unlock()
	if n > a.nReported {
		a.nReported = n
		a.cfg.OnDurable(d)
	}
}

func (a *Appender) fail(err error) {
	a.mu.Lock()
	if a.err == nil {
		a.setErrLocked(err)
		a.broadcastLocked()
	}
	a.mu.Unlock()
}

// setErrLocked records the appender's first fatal error, which ends Run.
func (a *Appender) setErrLocked(err error) {
	if a.err == nil {
		a.err = err
		close(a.failed)
	}
}

// count updates the counters under a.mu (which the caller must not hold).
func (a *Appender) count(f func(*Stats)) {
	a.mu.Lock()
	f(&a.stats)
	a.mu.Unlock()
}
