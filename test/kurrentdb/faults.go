package kurrentdb

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SetFaults replaces the injected faults; it takes effect for RPCs that
// start afterwards. It returns the validation errors and changes nothing if
// f is invalid.
func (s *Server) SetFaults(f Faults) error {
	if errs := f.validate("Faults."); len(errs) > 0 {
		return joinErrs(errs)
	}
	s.faults.Store(&f)
	return nil
}

// DropSubscriptions ends every open subscription with gRPC Unavailable, as a
// server restart or leader change would. The client sees SubscriptionDropped.
func (s *Server) DropSubscriptions() { s.cancelAll(s.subs) }

// writeFaults applies latency, then decides the injected error (nil: none)
// and whether it must come after the write.
func (s *Server) writeFaults(ctx context.Context) (err error, afterCommit bool) {
	return applyFaults(ctx, s.faults.Load())
}

// applyFaults is writeFaults with the faults taken earlier (BatchAppend
// takes them when it receives the complete request).
func applyFaults(ctx context.Context, f *Faults) (err error, afterCommit bool) {
	if d := f.AppendLatency + jitter(f.AppendLatencyJitter); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err(), false
		}
	}
	if f.UnavailableRate == 0 && f.AbortedRate == 0 {
		return nil, false
	}
	switch x := rand.Float64(); {
	case x < f.UnavailableRate:
		return status.Error(codes.Unavailable, "Server is not ready (injected fault)"), f.FailAfterCommit
	case x < f.UnavailableRate+f.AbortedRate:
		return status.Error(codes.Aborted, "Operation timed out (injected fault)"), f.FailAfterCommit
	}
	return nil, false
}

func jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}
