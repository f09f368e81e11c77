package retry

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
	var r Backoff
	var got []time.Duration
	for range 8 {
		got = append(got, r.Next())
		if r.Wait(ctx) {
			t.Fatal("wait on an ended context returned true")
		}
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	r.Reset()
	if r.Next() != 100*time.Millisecond {
		t.Fatalf("after reset: %v, want 100ms", r.Next())
	}
}

// TestBackoffBounds: the schedule follows First and Max when set.
func TestBackoffBounds(t *testing.T) {
	b := Backoff{First: 2 * time.Millisecond, Max: 8 * time.Millisecond}
	for _, want := range []time.Duration{2, 4, 8, 8} {
		if b.Next() != want*time.Millisecond {
			t.Fatalf("Next = %v, want %v ms", b.Next(), want)
		}
		if !b.Wait(context.Background()) {
			t.Fatal("Wait on a live context returned false")
		}
	}
}
