package main

import (
	"testing"
	"time"
)

// TestLatencyFiguresSplitByCommitTime: the measured run is every record
// committed at or after its start, whatever order the records arrived in;
// the warm-up's figures come from those before it, less the first
// transaction (which went all the way alone).
func TestLatencyFiguresSplitByCommitTime(t *testing.T) {
	start := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	c := &consumer{}
	add := func(commit time.Time, lat, prod time.Duration) {
		c.times = append(c.times, recordTimes{commit: commit, produced: commit.Add(prod), arrived: commit.Add(lat)})
	}
	add(start.Add(-30*time.Second), ms(900), ms(800)) // the first transaction: in neither
	add(start.Add(-time.Second), ms(40), ms(10))      // warm-up
	add(start.Add(-time.Millisecond), ms(60), ms(20)) // warm-up, arriving after the next one
	add(start, ms(30), ms(5))                         // measured: committed at the start
	add(start.Add(time.Second), ms(10), ms(2))
	add(start.Add(2*time.Second), ms(20), ms(4))
	var r Result
	if n := r.latencyFigures(c, start); n != 3 {
		t.Fatalf("measured %d records; want 3", n)
	}
	if r.LatencyP50Ms != 20 || r.LatencyP99Ms != 30 || r.LatencyMaxMs != 30 || r.ProducedP50Ms != 4 || r.ProducedP99Ms != 5 {
		t.Fatalf("measured p50 %v p99 %v max %v, to the producer p50 %v p99 %v; want 20, 30, 30, 4, 5",
			r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.ProducedP50Ms, r.ProducedP99Ms)
	}
	if r.WarmupP50Ms != 40 || r.WarmupP99Ms != 60 {
		t.Fatalf("warm-up p50 %v p99 %v; want 40, 60 (the first transaction's 900 left out)", r.WarmupP50Ms, r.WarmupP99Ms)
	}
	if len(r.latencies) != 3 || len(r.arrivals) != 3 || !r.start.Equal(start) {
		t.Fatalf("plot series: %d latencies, %d arrivals, start %v; want 3, 3, %v", len(r.latencies), len(r.arrivals), r.start, start)
	}
	var none Result
	if n := none.latencyFigures(&consumer{times: c.times[:3]}, start); n != 0 || none.LatencyP99Ms != 0 {
		t.Fatalf("nothing after the start: measured %d, p99 %v; want 0", n, none.LatencyP99Ms)
	}
}
