package store

// The dispatcher: how queued events become appends (one batch per stream at
// a time, at most MaxInFlight in flight, on workers or sent without one once
// BatchAppend is known), and how an append's outcome advances the streams,
// the transactions and the durable LSN. The loop for one batch is in
// stream.go.

import (
	"context"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// dispatchLocked starts appends for ready streams while slots are free.
//
// Building a batch drops every event at or before the position the stream is
// known to hold (and any event not after the previous one in the batch):
// those are re-deliveries, stored already. This is the only de-duplication
// rule, and it holds for crash replays (after the tail read), for capture's
// re-deliveries after a reconnect in the same process, and for duplicates
// queued behind their originals.
func (a *Appender) dispatchLocked() {
	if a.runCtx == nil || a.err != nil || a.stopping {
		return
	}
	if q := a.streams[a.dlStream]; q != nil && q.held && len(q.queue) > 0 && !a.heldLocked(q.queue[0]) {
		q.held = false
		if !q.ready && !q.busy {
			q.ready = true
			a.ready = append(a.ready, q)
		}
	}
	storeMax := int(a.limits.append.Load())
	for len(a.ready) > 0 && a.inflight < a.cfg.MaxInFlight {
		s := a.ready[0]
		a.ready = a.ready[1:]
		s.ready = false
		rev, last, warm := a.known.get(s.name)
		haveLast := warm
		var batch []*item
		bytes, stBytes, n := 0, 0, 0
		held := false
		for n < len(s.queue) && len(batch) < a.cfg.MaxBatchEvents {
			it := s.queue[n]
			if haveLast && !last.Less(it.pos) {
				a.completeLocked(it)
				a.stats.Deduplicated++
				n++
				continue
			}
			if it.dl && a.heldLocked(it) {
				held = true
				break
			}
			if len(batch) > 0 && (bytes+it.size > a.cfg.MaxBatchBytes || storeMax > 0 && stBytes+it.storeSize > storeMax || it.alone) {
				break
			}
			batch = append(batch, it)
			bytes += it.size
			stBytes += it.storeSize
			last, haveLast = it.pos, true
			n++
			if it.alone {
				break
			}
		}
		s.queue = s.queue[n:]
		if len(batch) == 0 {
			if held {
				s.held = true // dispatched again once it is not (above)
				a.advanceLocked()
				continue
			}
			if len(s.queue) > 0 {
				s.ready = true
				a.ready = append(a.ready, s)
			} else {
				delete(a.streams, s.name)
			}
			a.advanceLocked()
			continue
		}
		s.busy = true
		a.inflight++
		a.stats.MaxInFlightSet = max(a.stats.MaxInFlightSet, a.inflight)
		a.startLocked(appendJob{s: s, batch: batch, rev: rev, warm: warm})
	}
}

// appendJob is one append to start: a stream's batch, and its revision
// when known (warm).
type appendJob struct {
	s     *streamQ
	batch []*item
	rev   uint64
	warm  bool
}

// startLocked starts j's append. Once the store is known to serve
// BatchAppend, the append is sent without a goroutine waiting for it
// (startAsync): a goroutine per append and the hand-offs to and from it were
// a third of the appender's CPU in test/bench's bulk load (one event per
// append). Else j goes to an idle append worker, or a worker is started for
// it. Workers live until Run ends, so appends do not each start a goroutine
// and grow its stack again through gRPC's calls. There are at most
// MaxInFlight appends at a time; a worker between an append and its next
// wait is not idle, so there are at most about twice as many workers.
func (a *Appender) startLocked(j appendJob) {
	// A batch with snapshot rows to check first (Event.Recheck) reads the
	// stream before its append: a worker's job.
	if a.batch != nil && a.batch.supported.Load() == 1 && !needsRecheck(j.batch) {
		a.startAsync(a.runCtx, a.newAttempt(j.s, j.batch, j.rev, j.warm))
		return
	}
	select {
	case a.jobs <- j:
		return
	default:
	}
	a.wg.Add(1)
	go a.worker(a.runCtx, j)
}

func (a *Appender) worker(ctx context.Context, j appendJob) {
	defer a.wg.Done()
	for {
		a.appendBatch(ctx, j.s, j.batch, j.rev, j.warm)
		select {
		case j = <-a.jobs:
		case <-ctx.Done():
			return
		}
	}
}

// completeLocked accounts for an event that is stored (or found stored, or
// replaced by its dead letter).
func (a *Appender) completeLocked(it *item) {
	it.tx.outstanding--
	if !it.dl {
		it.tx.data--
	}
	a.pending -= it.size
}

// finish records the outcome of one stream's append: stored events, and the
// stream's revision and tail position when known (after an error they are
// not: the next append to the stream starts cold).
func (a *Appender) finish(s *streamQ, batch []*item, stored int, rev uint64, tail contract.Pos, haveRev bool, err error) {
	a.mu.Lock()
	a.endLocked(s, rev, tail, haveRev)
	if err != nil {
		a.setErrLocked(err)
	}
	if err == nil {
		for _, it := range batch {
			a.completeLocked(it)
		}
		a.stats.Events += int64(stored)
		a.stats.Deduplicated += int64(len(batch) - stored)
	}
	a.nextLocked(s)
	a.mu.Unlock()
	a.report()
}

// endLocked ends the append in flight on s, remembering the stream's
// revision and tail when known.
func (a *Appender) endLocked(s *streamQ, rev uint64, tail contract.Pos, haveRev bool) {
	a.inflight--
	s.busy = false
	if haveRev {
		a.known.put(s.name, rev, tail)
	} else {
		a.known.forget(s.name)
	}
}

// nextLocked makes s ready again if it has events (else forgets it), then
// moves the durable LSN and starts what can start.
func (a *Appender) nextLocked(s *streamQ) {
	switch {
	case len(s.queue) > 0 && !s.ready:
		s.ready = true
		a.ready = append(a.ready, s)
	case len(s.queue) == 0:
		delete(a.streams, s.name) // idle: what must be remembered is in a.known
	}
	a.advanceLocked()
	a.dispatchLocked()
	a.broadcastLocked()
}

// advanceLocked moves the durable LSN over the prefix of durable transactions.
func (a *Appender) advanceLocked() {
	i := 0
	for i < len(a.txs) && a.txs[i].committed && a.txs[i].outstanding == 0 {
		if !a.txs[i].aborted {
			a.durable = max(a.durable, a.txs[i].lsn)
			a.nDurable++
		}
		i++
	}
	if i > 0 {
		a.txs = append(a.txs[:0], a.txs[i:]...)
		a.broadcastLocked()
	}
}

// broadcastLocked wakes whoever waits for a change. The channel is made
// only when someone waits (changedLocked): state changes with every append,
// and a channel per change was a million allocations for a million events.
func (a *Appender) broadcastLocked() {
	if a.changed != nil {
		close(a.changed)
		a.changed = nil
	}
}

// changedLocked is a channel closed at the next change.
func (a *Appender) changedLocked() chan struct{} {
	if a.changed == nil {
		a.changed = make(chan struct{})
	}
	return a.changed
}
