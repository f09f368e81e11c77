package postgres

import (
	"context"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Phase is what a Source is doing.
type Phase int32

// The phases, in the order a Source goes through them.
const (
	// PhaseStarting: connecting, checking the server, preparing the slot,
	// or reconnecting after a transient failure.
	PhaseStarting Phase = iota
	// PhaseSnapshot: streaming while the initial snapshot is read (the
	// source is not caught up with the database until it is complete).
	PhaseSnapshot
	// PhaseStreaming: the replication stream is open.
	PhaseStreaming
	// PhaseDraining: Drain was called; no new transaction is taken, acks
	// are still confirmed to Postgres.
	PhaseDraining
	// PhaseStopped: Run returned.
	PhaseStopped
)

var phaseNames = [...]string{"starting", "snapshot", "streaming", "draining", "stopped"}

func (p Phase) String() string {
	if p >= 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "unknown"
}

// Phase returns what the Source is doing now. Safe for concurrent use.
func (s *Source) Phase() Phase {
	p := Phase(s.phase.Load())
	if p == PhaseStreaming && s.snap.initialRunning.Load() {
		return PhaseSnapshot
	}
	return p
}

// Drain makes the streaming Source stop taking new transactions at the next
// transaction boundary (a transaction being received is delivered to its
// Commit first) while it keeps confirming to Postgres what the downstream
// acknowledges, until Run's context ends. Then Run sends a last status
// update with everything acknowledged and returns. So a graceful stop is:
// Drain, wait until what was delivered is acknowledged, cancel Run.
//
// A snapshot being read (they are read while streaming) drains the same
// way: the chunk under way does not complete (its high watermark is not
// taken), and the next session reads it again from the progress saved
// after the last completed chunk. Safe for concurrent use; idempotent.
func (s *Source) Drain() {
	s.draining.Store(true)
	select {
	case s.drainCh <- struct{}{}:
	default:
	}
}

// drainLoop is the receive loop once Drain was called outside a
// transaction: it reads nothing more from the stream and confirms every
// ack (and every StatusInterval, so the walsender sees replies) until ctx
// ends, then sends the last status and ends the stream (endStream).
func (s *Source) drainLoop(ctx context.Context, st *streamState) error {
	s.phase.Store(int32(PhaseDraining))
	s.log.Info("capture: draining: no new transactions are taken; confirming what is durable")
	t := time.NewTicker(s.cfg.StatusInterval)
	defer t.Stop()
	for {
		st.pos.ack(contract.LSN(s.acked.Load()))
		if err := s.sendStatus(st, st.pos.advance()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			st.pos.ack(contract.LSN(s.acked.Load()))
			if err := s.sendStatus(st, st.pos.advance()); err == nil {
				s.endStream(st)
			}
			return ctx.Err()
		case <-s.ackCh:
		case <-t.C:
		}
	}
}

// Positions returns the server's WAL end last reported by the walsender and
// the position last confirmed to Postgres (0 before streaming). Their
// difference is the slot's lag in bytes. Safe for concurrent use.
func (s *Source) Positions() (walEnd, confirmed contract.LSN) {
	return contract.LSN(s.walEnd.Load()), contract.LSN(s.confirmedA.Load())
}

// endStreamWait bounds endStream.
const endStreamWait = 5 * time.Second

// endStream ends the replication stream as the protocol asks: CopyDone,
// then the server's answers read up to ReadyForQuery, so the walsender has
// processed every status update sent before it. Closing the socket instead,
// with WAL the walsender sent still unread in it, resets the connection,
// and the server may drop the last status update still in its receive
// buffer: the slot would not show the last confirmed position.
func (s *Source) endStream(st *streamState) {
	_ = st.repl.Conn().SetDeadline(time.Now().Add(endStreamWait))
	if _, err := pglogrepl.SendStandbyCopyDone(context.Background(), st.repl); err != nil {
		s.log.Debug("capture: ending the replication stream", "slot", s.cfg.Slot, "err", err)
	}
}
