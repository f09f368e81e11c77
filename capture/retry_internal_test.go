package capture

import (
	"context"
	"testing"
	"time"
)

// TestRetrySchedule: 100 ms doubling to 5 s, back to 100 ms after reset;
// a wait on an ended context returns false at once.
func TestRetrySchedule(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var r retry
	var got []time.Duration
	for range 8 {
		got = append(got, r.next())
		if r.wait(ctx) {
			t.Fatal("wait on an ended context returned true")
		}
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	r.reset()
	if r.next() != 100*time.Millisecond {
		t.Fatalf("after reset: %v, want 100ms", r.next())
	}
}
