package kafka

import (
	"testing"
	"time"
)

// TestGapLeft: a transaction begins txnGap after the last one ended at the
// earliest, and at once when that much has passed (or none ended yet).
func TestGapLeft(t *testing.T) {
	ended := time.Unix(1000, 0)
	for _, c := range []struct {
		ended, now time.Time
		want       time.Duration
	}{
		{ended, ended, txnGap},
		{ended, ended.Add(time.Millisecond), txnGap - time.Millisecond},
		{ended, ended.Add(txnGap), 0},
		{ended, ended.Add(time.Second), 0},
		{time.Time{}, ended, 0}, // the first transaction
	} {
		if got := gapLeft(c.ended, c.now); got != c.want {
			t.Errorf("gapLeft(%v, %v) = %v; want %v", c.ended, c.now, got, c.want)
		}
	}
}
