package capture

import (
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestLagQueue: the age is that of the oldest unconfirmed transaction from
// its commit time (its receipt when it has none, or a commit time in the
// future); confirming drops exactly the transactions at or below the LSN
// and reports each one's time since receipt.
func TestLagQueue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var q lagQueue
	if got := q.age(t0); got != 0 {
		t.Fatalf("empty queue age %v, want 0", got)
	}
	q.push(contract.Tx{CommitLSN: 10, CommitTime: t0.Add(-30 * time.Second)}, t0)
	q.push(contract.Tx{CommitLSN: 20}, t0.Add(time.Second))                                  // snapshot chunk: no commit time
	q.push(contract.Tx{CommitLSN: 30, CommitTime: t0.Add(time.Hour)}, t0.Add(2*time.Second)) // skewed clock
	now := t0.Add(10 * time.Second)
	if got := q.age(now); got != 40*time.Second {
		t.Errorf("age %v, want 40s (now - the oldest commit time)", got)
	}
	var seen []time.Duration
	q.confirm(20, now, func(d time.Duration) { seen = append(seen, d) })
	if len(seen) != 2 || seen[0] != 10*time.Second || seen[1] != 9*time.Second {
		t.Errorf("confirm(20) observed %v, want [10s 9s]", seen)
	}
	if got := q.age(now); got != 8*time.Second {
		t.Errorf("age after confirm(20) %v, want 8s (receipt of the skewed one)", got)
	}
	q.confirm(30, now, func(time.Duration) {})
	if got := q.age(now); got != 0 {
		t.Errorf("age after everything confirmed %v, want 0", got)
	}
}
