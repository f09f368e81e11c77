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
//	append(expected):
//	  ok                  → stored; remember the new revision
//	  wrong expected ver. → read the tail:
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
func (a *Appender) attempts(ctx context.Context, at *attempt, err error) {
	recheck := err == nil && needsRecheck(at.todo)
	for {
		if err == nil && recheck && len(at.todo) > 0 {
			if err := a.recheck(ctx, at); err != nil {
				if ctx.Err() != nil {
					err = ErrClosed
				}
				a.finish(at.s, at.batch, 0, 0, contract.Pos{}, false, err)
				return
			}
			recheck = false
		}
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
			// After a wrong expected version the stream holds events this
			// append did not know of: look for the rows again.
			recheck = classify(err) == kindWrongVersion && needsRecheck(at.todo)
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
	a.countLocked(func(st *Stats) {
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
		return a.reconcile(ctx, at)
	case kindDeleted:
		return &DeletedError{Stream: at.s.name, Cause: err}
	case kindFatal:
		return err
	}
	// Unavailable, NotLeader (the client reconnects to the leader),
	// deadlines, aborted, connection closed: all transient for an append
	// that carries its own ids and expected revision.
	a.cfg.Logger.Warn("append failed; retrying", "stream", at.s.name, "events", len(at.todo), "err", err, "backoff", at.backoff.Next())
	a.countLocked(func(st *Stats) { st.Retries++ })
	if !at.backoff.Wait(ctx) {
		return ErrClosed
	}
	return nil
}

// reconcile reads the tail after a wrong-expected-version: this slot's
// event there means the events at or before its position are stored
// (dropped from the batch); anything else is a conflict.
func (a *Appender) reconcile(ctx context.Context, at *attempt) error {
	tailRev, tailPos, ours, exists, rerr := a.readTail(ctx, at.s.name)
	if rerr != nil {
		if ctx.Err() != nil {
			return ErrClosed
		}
		a.cfg.Logger.Warn("reading stream tail after a wrong-expected-version", "stream", at.s.name, "err", rerr)
		a.countLocked(func(st *Stats) { st.Retries++ })
		if !at.backoff.Wait(ctx) {
			return ErrClosed
		}
		return nil
	}
	if !exists || !ours {
		reason := "the last event is not this slot's"
		if !exists {
			reason = "the stream has no readable events but is not new (deleted, or metadata only)"
		}
		cerr := &ConflictError{Stream: at.s.name, Expected: expectedNum(at.expected), Actual: revNum(tailRev, exists), Reason: reason}
		a.countLocked(func(st *Stats) { st.Conflicts++ })
		if a.cfg.OnConflict == ConflictStop || !exists {
			return cerr
		}
		a.cfg.Logger.Warn("foreign write to a Chronicler stream; appending after it (store.on_conflict: reread)", "stream", at.s.name, "revision", tailRev)
		at.expected = esdb.Revision(tailRev)
		return nil
	}
	if at.warm {
		// Our own event at the tail, yet our exact revision was wrong:
		// this slot's events were written by another process: most often a
		// killed earlier instance whose in-flight appends landed after this
		// one read the tail, else two instances running with one slot.
		// De-duplication below keeps the stream right either way.
		a.cfg.Logger.Warn("stream moved under a known revision with this slot's events (a killed instance's late appends, or a second instance on the same slot); de-duplicated", "stream", at.s.name, "expected", at.rev, "found", tailRev)
	}
	i := 0
	for i < len(at.todo) && !tailPos.Less(at.todo[i].pos) {
		i++
	}
	at.todo = at.todo[i:]
	at.tail = tailPos
	at.expected = esdb.Revision(tailRev)
	at.rev, at.warm = tailRev, true
	return nil
}

// appendEvents is one append: through BatchAppend when the appender has a
// connection for it and the server lists it, else the official client's
// AppendToStream. It returns the stream's new revision.
func (a *Appender) appendEvents(ctx context.Context, stream string, expected esdb.ExpectedRevision, items []*item) (uint64, error) {
	if a.batch != nil {
		next, err := a.batch.append(ctx, stream, expected, items)
		if err == nil {
			a.countLocked(func(st *Stats) { st.BatchAppends++ })
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

// readTail reads the stream's last event. exists is false when the stream
// has no readable event; ours reports whether the event is this slot's, and
// tail is its position then.
func (a *Appender) readTail(ctx context.Context, stream string) (rev uint64, tail contract.Pos, ours, exists bool, err error) {
	a.countLocked(func(st *Stats) { st.TailReads++ })
	rec, err := readLast(ctx, a.db, stream)
	if err != nil || rec == nil {
		return 0, contract.Pos{}, false, false, err
	}
	src, ok := contract.ParseSource(rec.UserMetadata)
	return rec.EventNumber, src.Pos, ok && src.Slot == a.cfg.Slot, true, nil
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

// recheck drops from at.todo the snapshot rows' events (Event.Recheck)
// that are already in the stream: it reads the stream backwards from its
// end, through the events positioned after the lowest Recheck of the batch,
// and drops every rechecked item whose id it finds there (or earlier in
// the batch: a row queued twice, its first copy not stored yet). A stream
// that does not exist holds none of them.
func (a *Appender) recheck(ctx context.Context, at *attempt) error {
	floor := contract.LSN(0)
	for _, it := range at.todo {
		if it.recheck != 0 && (floor == 0 || it.recheck < floor) {
			floor = it.recheck
		}
	}
	stored := map[[16]byte]bool{}
	err := readBack(ctx, a.db, at.s.name, func(id [16]byte, meta []byte) bool {
		src, ok := contract.ParseSource(meta)
		if !ok || src.Slot != a.cfg.Slot || src.Pos.CommitLSN <= floor {
			return false // below the floor (or not ours): nothing older can be a re-read row
		}
		stored[id] = true
		return true
	})
	a.countLocked(func(st *Stats) { st.TailReads++ })
	if err != nil {
		return fmt.Errorf("reading %s back to %s for snapshot rows already stored: %w", at.s.name, floor, err)
	}
	kept := at.todo[:0:0]
	for _, it := range at.todo {
		id := [16]byte(it.id)
		if it.recheck != 0 && stored[id] {
			continue
		}
		stored[id] = true
		kept = append(kept, it)
	}
	at.todo = kept
	return nil
}
