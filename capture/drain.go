package capture

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/chronicler-dev/chronicler/capture/postgres"
)

// drainPoll is how often drain looks at the source and the pipeline.
const drainPoll = 10 * time.Millisecond

// drain is the graceful stop (Options.Grace): the source stops taking
// transactions at the next boundary, and once everything it delivered is
// confirmed to Postgres the source is stopped, sending its last status
// update. It returns nil when that finished, a *GraceError when grace passed
// first; the caller stops every part after it. ended is closed when some
// part returned (then there is nothing to drain), srcDone when the source
// did.
func drain(cur *atomic.Pointer[postgres.Source], pipe *Pipeline, grace time.Duration, ended, srcDone <-chan struct{}, stopSrc func(), log *slog.Logger) error {
	if grace <= 0 {
		return nil
	}
	src := cur.Load()
	if ph := src.Phase(); !streaming(ph) {
		log.Info("stopping at once: capture is not streaming (positions are confirmed only for what is stored, so nothing is lost)", "phase", ph.String())
		return nil
	}
	log.Info("graceful stop: draining capture", "grace", grace, "received", pipe.Committed().String(), "confirmed", pipe.Acked().String())
	began := time.Now()
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	src.Drain()
	stage := "taking the open transaction"
	expired := func() error {
		err := &GraceError{Grace: grace, Received: pipe.Committed(), Confirmed: pipe.Acked(), Stage: stage}
		log.Warn("graceful stop: grace period over; stopping now", "err", err)
		return err
	}
	for {
		// A replaced Source (busy slot at start-up) is drained too.
		if s := cur.Load(); s != src {
			src = s
			src.Drain()
		}
		ph := src.Phase()
		taking := streaming(ph)
		switch {
		case taking:
		case pipe.Acked() < pipe.Committed():
			stage = "storing and confirming"
		default:
			// Everything delivered is confirmed: stop the source, which
			// sends the last status update on its way out.
			stopSrc()
			select {
			case <-srcDone:
				log.Info("graceful stop: capture drained", "confirmed", pipe.Acked().String(), "took", time.Since(began).Round(time.Millisecond))
				return nil
			case <-deadline.C:
				stage = "sending the last status"
				return expired()
			}
		}
		select {
		case <-ended:
			return nil
		case <-deadline.C:
			return expired()
		case <-tick.C:
		}
	}
}

// streaming: the source takes transactions from the stream (PhaseSnapshot
// too: the initial snapshot is read while streaming).
func streaming(ph postgres.Phase) bool {
	return ph == postgres.PhaseStreaming || ph == postgres.PhaseSnapshot
}
