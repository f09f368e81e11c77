package main

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// TestLatencyFiguresSplitByCommitTime: the measured run is every record
// committed at or after its start, whatever order the records arrived in;
// the warm-up's figures come from those before it, less the first
// transaction (which went all the way alone).
func TestLatencyFiguresSplitByCommitTime(t *testing.T) {
	start := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	c := &consumer{}
	add := func(commit time.Time, lat, prod, stored time.Duration) {
		c.times = append(c.times, recordTimes{commit: commit, stored: commit.Add(stored), produced: commit.Add(prod), arrived: commit.Add(lat)})
	}
	add(start.Add(-30*time.Second), ms(900), ms(800), ms(700)) // the first transaction: in neither
	add(start.Add(-time.Second), ms(40), ms(10), ms(5))        // warm-up
	add(start.Add(-time.Millisecond), ms(60), ms(20), ms(10))  // warm-up, arriving after the next one
	add(start, ms(30), ms(5), ms(3))                           // measured: committed at the start
	add(start.Add(time.Second), ms(10), ms(2), ms(1))
	add(start.Add(2*time.Second), ms(20), ms(4), ms(2))
	var r Result
	if n := r.latencyFigures(c, start); n != 3 {
		t.Fatalf("measured %d records; want 3", n)
	}
	if r.LatencyP50Ms != 20 || r.LatencyP99Ms != 30 || r.LatencyMaxMs != 30 || r.ProducedP50Ms != 4 || r.ProducedP99Ms != 5 {
		t.Fatalf("measured p50 %v p99 %v max %v, to the producer p50 %v p99 %v; want 20, 30, 30, 4, 5",
			r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.ProducedP50Ms, r.ProducedP99Ms)
	}
	if r.StoredP50Ms != 2 || r.StoredP99Ms != 3 {
		t.Fatalf("to the store p50 %v p99 %v; want 2, 3", r.StoredP50Ms, r.StoredP99Ms)
	}
	// The slowest 1% of three records is the slowest one (latency 30 ms):
	// 3 ms to the store, 2 more to the producer, 25 in Kafka.
	if want := (Stages{Records: 1, CaptureMs: 3, PromoteMs: 2, KafkaMs: 25}); r.Tail == nil || *r.Tail != want {
		t.Fatalf("tail stages %+v; want %+v", r.Tail, want)
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

// TestHeaderTimes: a record's commit time and stored event id come from
// its ce_time and ce_id headers, and a record missing either is refused.
func TestHeaderTimes(t *testing.T) {
	rec := func(hs ...string) *kgo.Record {
		r := &kgo.Record{}
		for i := 0; i+1 < len(hs); i += 2 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: hs[i], Value: []byte(hs[i+1])})
		}
		return r
	}
	got, ok := headerTimes(rec(kafka.HeaderID, "0b7e5c1a-1111-4222-8333-944455556666/account-balance", kafka.HeaderTime, "2026-12-05T07:00:00.123456Z"))
	if !ok || got.event != "0b7e5c1a-1111-4222-8333-944455556666" || !got.commit.Equal(time.Date(2026, 12, 5, 7, 0, 0, 123456000, time.UTC)) {
		t.Fatalf("headerTimes = %+v, %v; want the event id before the / and the commit time", got, ok)
	}
	for _, r := range []*kgo.Record{
		rec(kafka.HeaderTime, "2026-12-05T07:00:00Z"),
		rec(kafka.HeaderID, "x/rule"),
		rec(kafka.HeaderID, "x/rule", kafka.HeaderTime, "yesterday"),
	} {
		if got, ok := headerTimes(r); ok {
			t.Errorf("headerTimes(%v) = %+v, true; want false", r.Headers, got)
		}
	}
}
