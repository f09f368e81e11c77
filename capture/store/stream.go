package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// appendBatch appends batch to stream s and reports the outcome with finish.
// rev/warm is the stream's known revision at dispatch (cold: not known).
//
// The loop, for one batch:
//
//	expected := warm ? exact rev : NoStream
//	snapshot rows to recheck → read the stream's end: drop the rows stored;
//	                           cold and exists → settle against the tail as below
//	append(expected):
//	  ok                  → stored; remember the new revision
//	  wrong expected ver. → read the tail (with the rows' recheck, if any):
//	                          ours  → drop events at or before the tail's position
//	                                  (already stored), expected := tail revision, again
//	                          other → conflict (stop, or reread: expected := tail revision)
//	  stream deleted      → fatal
//	  too large           → dead-letter what the store refuses (refused.go)
//	  transient           → back off, again with the same expected revision
//	                        (an append that did land is answered idempotently)
func (a *Appender) appendBatch(ctx context.Context, s *streamQ, batch []*item, rev uint64, warm bool) {
	a.attempts(ctx, a.newAttempt(s, batch, rev, warm), nil)
}

// attempts runs the loop above for at. err, when not nil, is the outcome of
// at's first append, already made (asyncDone).
//
// A batch with snapshot rows to check (Event.Recheck) reads the stream's
// end before its first append, and again after a wrong expected version
// (the stream then holds events the read did not see): one read gives the
// rows already stored and the tail (reconcile).
func (a *Appender) attempts(ctx context.Context, at *attempt, err error) {
	if err == nil && needsRecheck(at.todo) {
		// A cold stream's tail settles its expected revision here: no
		// wrong-expected-version round trip and second read.
		if err := a.reconcile(ctx, at, false); err != nil {
			a.finish(at.s, at.batch, 0, 0, contract.Pos{}, false, err)
			return
		}
	}
	for {
		if err == nil {
			if len(at.todo) == 0 { // everything was already stored
				a.finish(at.s, at.batch, 0, at.rev, at.tail, at.warm, nil)
				return
			}
			var next uint64
			if next, err = a.appendEvents(ctx, at.s.name, at.expected, at.todo); err == nil {
				a.stored(at, next, false)
				return
			}
		}
		if r, ok := refusalOf(err); ok && ctx.Err() == nil {
			// Never retried as it was: the event(s) over the store's limit
			// are dead-lettered (refused.go).
			a.learn(r)
			a.refused(at.s, at.batch, at.todo, at.rev, at.tail, at.warm, r)
			return
		}
		if ctx.Err() != nil {
			err = ErrClosed
		} else {
			err = a.recover(ctx, at, err)
		}
		if err != nil {
			a.finish(at.s, at.batch, 0, 0, contract.Pos{}, false, err)
			return
		}
	}
}

// stored finishes at after its append stored at.todo, the stream now at
// revision next; viaBatch counts it as a BatchAppend already (asyncDone).
func (a *Appender) stored(at *attempt, next uint64, viaBatch bool) {
	a.count(func(st *Stats) {
		st.Appends++
		if viaBatch {
			st.BatchAppends++
		}
	})
	a.finish(at.s, at.batch, len(at.todo), next, at.todo[len(at.todo)-1].pos, true, nil)
}

// startAsync sends at's first append without a goroutine waiting for it
// (batchConn.appendAsync); asyncDone finishes it, and hands anything but a
// plain success to the loop above on a goroutine of its own. a.wg counts it
// until then.
func (a *Appender) startAsync(ctx context.Context, at *attempt) {
	a.wg.Add(1)
	a.batch.appendAsync(asyncAppend{stream: at.s.name, expected: at.expected, items: at.todo,
		done: func(r batchResult) { a.asyncDone(ctx, at, r) }})
}

// asyncDone is called with the answer to at's first append: on the
// BatchAppend call's receiving goroutine, or the sender's with an error.
func (a *Appender) asyncDone(ctx context.Context, at *attempt, r batchResult) {
	next, err := r.outcome(at.s.name)
	if err == nil {
		a.stored(at, next, true)
		a.wg.Done()
		return
	}
	go func() {
		defer a.wg.Done()
		a.attempts(ctx, at, err)
	}()
}

// newAttempt is batch's state before its first append.
func (a *Appender) newAttempt(s *streamQ, batch []*item, rev uint64, warm bool) *attempt {
	at := &attempt{s: s, batch: batch, todo: batch, rev: rev, warm: warm, expected: esdb.NoStream{},
		backoff: retry.Backoff{First: a.cfg.RetryBackoff, Max: a.cfg.MaxRetryBackoff}}
	if warm {
		at.expected = esdb.Revision(rev)
	}
	return at
}

// attempt is one batch's state across its append attempts.
type attempt struct {
	s        *streamQ
	batch    []*item // the batch as dispatched
	todo     []*item // the batch's events not known to be stored
	tail     contract.Pos
	expected esdb.ExpectedRevision
	rev      uint64
	warm     bool
	backoff  retry.Backoff
}

// recover handles a failed append: nil to try again, else the error that
// ends the batch.
func (a *Appender) recover(ctx context.Context, at *attempt, err error) error {
	switch classify(err) {
	case kindWrongVersion:
		return a.reconcile(ctx, at, true)
	case kindDeleted:
		return &DeletedError{Stream: at.s.name, Cause: err}
	case kindFatal:
		return err
	}
	// Unavailable, NotLeader (the client reconnects to the leader),
	// deadlines, aborted, connection closed: all transient for an append
	// that carries its own ids and expected revision.
	a.cfg.Logger.Warn("append failed; retrying", "stream", at.s.name, "events", len(at.todo), "err", err, "backoff", at.backoff.Next())
	a.count(func(st *Stats) { st.Retries++ })
	if !at.backoff.Wait(ctx) {
		return ErrClosed
	}
	return nil
}

// reconcile reads the stream's end (readEnd) after a wrong-expected-version
// (wrongVersion), or before the first append of a batch with rows to
// recheck, and settles at against its tail (after a wrong-expected-version,
// or when the stream is cold and exists): this slot's event there means the
// events at or before its position are stored (dropped from the batch);
// anything else is a conflict. Then it drops the snapshot rows already
// stored. A failed read of the tail alone is retried (nil after a backoff);
// one that rechecks rows is the batch's error.
func (a *Appender) reconcile(ctx context.Context, at *attempt, wrongVersion bool) error {
	floor := recheckFloor(at.todo)
	end, rerr := a.readEnd(ctx, at.s.name, floor)
	if rerr != nil {
		if ctx.Err() != nil {
			return ErrClosed
		}
		if floor != 0 {
			return fmt.Errorf("reading %s back to %s for snapshot rows already stored: %w", at.s.name, floor, rerr)
		}
		a.cfg.Logger.Warn("reading stream tail after a wrong-expected-version", "stream", at.s.name, "err", rerr)
		a.count(func(st *Stats) { st.Retries++ })
		if !at.backoff.Wait(ctx) {
			return ErrClosed
		}
		return nil
	}
	if wrongVersion || !at.warm && end.exists {
		if err := a.settle(at, end); err != nil {
			return err
		}
	}
	if floor != 0 {
		at.todo = end.unstored(at.todo)
	}
	return nil
}

// settle takes the stream's end as at's expected revision and tail; see
// reconcile.
func (a *Appender) settle(at *attempt, end streamEnd) error {
	if !end.exists || !end.ours {
		reason := "the last event is not this slot's"
		if !end.exists {
			reason = "the stream has no readable events but is not new (deleted, or metadata only)"
		}
		cerr := &ConflictError{Stream: at.s.name, Expected: expectedNum(at.expected), Actual: revNum(end.rev, end.exists), Reason: reason}
		a.count(func(st *Stats) { st.Conflicts++ })
		if a.cfg.OnConflict == ConflictStop || !end.exists {
			return cerr
		}
		a.cfg.Logger.Warn("foreign write to a Chronicler stream; appending after it (store.on_conflict: reread)", "stream", at.s.name, "revision", end.rev)
		at.expected = esdb.Revision(end.rev)
		return nil
	}
	if at.warm {
		// Our own event at the tail, yet our exact revision was wrong:
		// this slot's events were written by another process: most often a
		// killed earlier instance whose in-flight appends landed after this
		// one read the tail, else two instances running with one slot.
		// De-duplication below keeps the stream right either way.
		a.cfg.Logger.Warn("stream moved under a known revision with this slot's events (a killed instance's late appends, or a second instance on the same slot); de-duplicated", "stream", at.s.name, "expected", at.rev, "found", end.rev)
	}
	i := 0
	for i < len(at.todo) && !end.tail.Less(at.todo[i].pos) {
		i++
	}
	at.todo = at.todo[i:]
	at.tail = end.tail
	at.expected = esdb.Revision(end.rev)
	at.rev, at.warm = end.rev, true
	return nil
}

// appendEvents is one append: through BatchAppend when the appender has a
// connection for it and the server lists it, else the official client's
// AppendToStream. It returns the stream's new revision.
func (a *Appender) appendEvents(ctx context.Context, stream string, expected esdb.ExpectedRevision, items []*item) (uint64, error) {
	if a.batch != nil {
		next, err := a.batch.append(ctx, stream, expected, items)
		if err == nil {
			a.count(func(st *Stats) { st.BatchAppends++ })
		}
		if !errors.Is(err, errBatchUnsupported) {
			return next, err
		}
	}
	events := make([]esdb.EventData, len(items))
	for i, it := range items {
		events[i] = it.eventData()
	}
	res, err := a.db.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expected}, events...)
	if err != nil {
		return 0, err
	}
	return res.NextExpectedVersion, nil
}

// appendKind is what an append's error means for the loop in appendBatch.
type appendKind int

const (
	kindTransient    appendKind = iota // retry with the same ids and expected revision
	kindWrongVersion                   // read the tail
	kindDeleted                        // the stream is deleted: fatal
	kindTooLarge                       // over a size limit of the store: dead-letter (refused.go)
	kindFatal                          // the store refuses the append for good
)

// classify maps an append error from either path to its kind.
func classify(err error) appendKind {
	var be *batchError
	if errors.As(err, &be) {
		return be.kind
	}
	if _, ok := refusalOf(err); ok {
		return kindTooLarge
	}
	switch errorCode(err) {
	case esdb.ErrorCodeWrongExpectedVersion:
		return kindWrongVersion
	case esdb.ErrorCodeStreamDeleted:
		return kindDeleted
	}
	return kindTransient
}

// streamEnd is what a read of a stream's end found.
type streamEnd struct {
	exists bool         // the stream has a readable event
	rev    uint64       // the last event's revision
	tail   contract.Pos // its position
	ours   bool         // it is this slot's
	// stored: the ids of this slot's events positioned after the floor
	// readEnd was given (nil without one).
	stored map[[16]byte]bool
}

// readEnd reads the stream's last event and, when floor is not zero, goes
// on backwards through this slot's events positioned after floor,
// collecting their ids (the snapshot rows of a batch with Recheck: nothing
// older can be a row read again). One read serves the tail and the recheck.
func (a *Appender) readEnd(ctx context.Context, stream string, floor contract.LSN) (streamEnd, error) {
	a.count(func(st *Stats) { st.TailReads++ })
	var end streamEnd
	page := uint64(1)
	if floor != 0 {
		page, end.stored = readBackPage, map[[16]byte]bool{}
	}
	err := readBack(ctx, a.db, stream, page, func(ev *esdb.RecordedEvent) bool {
		src, ok := contract.ParseSource(ev.UserMetadata)
		ours := ok && src.Slot == a.cfg.Slot
		if !end.exists {
			end.exists, end.rev, end.tail, end.ours = true, ev.EventNumber, src.Pos, ours
		}
		if floor == 0 || !ours || src.Pos.CommitLSN <= floor {
			return false
		}
		end.stored[[16]byte(ev.EventID)] = true
		return true
	})
	return end, err
}

// unstored is items without the snapshot rows (Event.Recheck) found in the
// stream's end, or earlier in items (a row queued twice, its first copy
// not stored yet).
func (end streamEnd) unstored(items []*item) []*item {
	seen := end.stored
	kept := items[:0:0]
	for _, it := range items {
		id := [16]byte(it.id)
		if it.recheck != 0 && seen[id] {
			continue
		}
		seen[id] = true
		kept = append(kept, it)
	}
	return kept
}

func errorCode(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return esdb.ErrorCodeUnknown
}

func expectedNum(e esdb.ExpectedRevision) int64 {
	if r, ok := e.(esdb.StreamRevision); ok {
		return int64(r.Value)
	}
	return -1
}

func revNum(rev uint64, exists bool) int64 {
	if !exists {
		return -1
	}
	return int64(rev)
}

// needsRecheck reports whether one of the items carries Event.Recheck.
func needsRecheck(items []*item) bool {
	for _, it := range items {
		if it.recheck != 0 {
			return true
		}
	}
	return false
}

// recheckFloor is the lowest Recheck of items, 0 when none has one.
func recheckFloor(items []*item) contract.LSN {
	floor := contract.LSN(0)
	for _, it := range items {
		if it.recheck != 0 && (floor == 0 || it.recheck < floor) {
			floor = it.recheck
		}
	}
	return floor
}
