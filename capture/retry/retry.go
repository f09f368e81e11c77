// Package retry is the one retry policy of the product: a backoff that
// starts at 100 ms, doubles to 5 s, and draws each wait from [d/2, d]
// (jitter, so instances that failed together do not retry together), and a
// sleep that ends with its context. Every owner of an outside system and
// every stage retries with it. It imports nothing of the project.
//
//	var b retry.Backoff
//	for {
//		err := try()
//		if err == nil {
//			b.Reset()
//			break
//		}
//		log.Warn("…; retrying", "err", err, "backoff", b.Next())
//		if !b.Wait(ctx) {
//			return ctx.Err()
//		}
//	}
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// The default schedule.
const (
	DefaultFirst = 100 * time.Millisecond
	DefaultMax   = 5 * time.Second
)

// Backoff is a retry schedule: First, doubling to Max (defaults
// DefaultFirst and DefaultMax), each wait drawn from [d/2, d]. The zero
// value is ready to use. Not safe for concurrent use.
type Backoff struct {
	First, Max time.Duration
	d          time.Duration
}

// Next is the delay the next wait is drawn from.
func (b *Backoff) Next() time.Duration {
	first := b.First
	if first <= 0 {
		first = DefaultFirst
	}
	return max(b.d, first)
}

// Wait sleeps before the next attempt; false when ctx ended first.
func (b *Backoff) Wait(ctx context.Context) bool {
	d := b.Next()
	limit := b.Max
	if limit <= 0 {
		limit = DefaultMax
	}
	b.d = min(2*d, limit)
	return Sleep(ctx, d/2+rand.N(d/2+1))
}

// Reset starts again from First, after a success.
func (b *Backoff) Reset() { b.d = 0 }

// Sleep waits d; false when ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
