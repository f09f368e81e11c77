package main

import (
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*options)
		ok     bool
		want   int // scenarios
	}{
		{"defaults", func(*options) {}, true, len(allScenarios)},
		{"a list", func(o *options) { o.scenario = "capture, full" }, true, 2},
		{"unknown scenario", func(o *options) { o.scenario = "capture,fast" }, false, 0},
		{"unknown workload", func(o *options) { o.workload = "tpcc" }, false, 0},
		{"odd wide rows", func(o *options) { o.wideRows = 1001 }, false, 0},
		{"too few wide rows", func(o *options) { o.wideRows = 10 }, false, 0},
		{"zero rate", func(o *options) { o.rate = 0 }, false, 0},
		{"sub-second duration", func(o *options) { o.duration = time.Millisecond }, false, 0},
		{"negative warm-up", func(o *options) { o.latencyWarmup = -time.Second }, false, 0},
		{"keep autogroup", func(o *options) { o.autogroup = "keep" }, true, len(allScenarios)},
		{"unknown autogroup", func(o *options) { o.autogroup = "on" }, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := defaultOptions()
			c.mutate(&o)
			scenarios, _, err := o.validate()
			if (err == nil) != c.ok {
				t.Fatalf("validate() error %v; want ok=%v", err, c.ok)
			}
			if c.ok && len(scenarios) != c.want {
				t.Fatalf("%d scenarios %v; want %d", len(scenarios), scenarios, c.want)
			}
		})
	}
}

func TestQuantileIsNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}} {
		if got := quantile(d, c.q); got != c.want {
			t.Fatalf("quantile(1..100 ms, %v) = %v; want %v", c.q, got, c.want)
		}
	}
	if got := quantile([]time.Duration{7}, 0.99); got != 7 {
		t.Fatalf("quantile of one = %v; want 7", got)
	}
}

// TestGoals: the acceptance figures apply where it sets them, and
// nowhere else: the worker's CPU (bulk store-0ms and full, pgbench full),
// the four processes' CPU (bulk full; not held when unknown), the worker's
// peak RSS through the bulk load, store-2ms against store-0ms, and p99
// latency.
func TestGoals(t *testing.T) {
	store0 := &Result{Scenario: "store-0ms", ChangesPerSec: 1000}
	cases := []struct {
		r    Result
		held bool
		n    int
	}{
		{Result{Scenario: "capture", Workload: "pgbench", RatioToLimit: 0.2}, true, 0},
		{Result{Scenario: "store-0ms", Workload: "pgbench", CPUSecPerMChanges: 40}, true, 0},
		{Result{Scenario: "store-0ms", Workload: "bulk", CPUSecPerMChanges: 23, PeakRSSMiB: 140}, true, 2},
		{Result{Scenario: "store-0ms", Workload: "bulk", CPUSecPerMChanges: 23.1, PeakRSSMiB: 140}, false, 2},
		{Result{Scenario: "store-0ms", Workload: "bulk", CPUSecPerMChanges: 20, PeakRSSMiB: 150}, false, 2}, // 150 MiB > 150 MB
		{Result{Scenario: "full", Workload: "bulk", CPUSecPerMChanges: 45, MachineCPUSecPerM: ptr(95), PeakRSSMiB: 100}, true, 3},
		{Result{Scenario: "full", Workload: "bulk", CPUSecPerMChanges: 45, MachineCPUSecPerM: ptr(96), PeakRSSMiB: 100}, false, 3},
		{Result{Scenario: "full", Workload: "bulk", CPUSecPerMChanges: 45, PeakRSSMiB: 100}, false, 3}, // machine unknown
		{Result{Scenario: "full", Workload: "pgbench", CPUSecPerMChanges: 18.5}, false, 1},
		{Result{Scenario: "full", Workload: "wide", CPUSecPerMChanges: 80}, true, 0},
		{Result{Scenario: "store-2ms", Workload: "wide", ChangesPerSec: 499}, false, 1},
		{Result{Scenario: "publish", Workload: "bulk", PeakRSSMiB: 50}, true, 1},
		{Result{Scenario: "latency", LatencyP99Ms: 100.5, RateTxPerSec: 1000}, false, 1},
	}
	for i, c := range cases {
		r := c.r
		r.evaluate(store0)
		if r.GoalsHeld != c.held || len(r.Goals) != c.n {
			t.Fatalf("case %d, %s/%s: held %v with goals %+v; want held %v with %d goals", i, r.Workload, r.Scenario, r.GoalsHeld, r.Goals, c.held, c.n)
		}
	}
}

// TestDescribeGoals pins the goals' text: the line's and, with values,
// report.md's.
func TestDescribeGoals(t *testing.T) {
	gs := []Goal{{Goal: "ratio >= 0.9", Value: 1.234, Held: true}, {Goal: "p99 <= 100 ms", Value: 120, Held: false}}
	if got, want := describeGoals(gs, false), "ratio >= 0.9: held; p99 <= 100 ms: MISSED"; got != want {
		t.Errorf("describeGoals(values=false) = %q; want %q", got, want)
	}
	if got, want := describeGoals(gs, true), "ratio >= 0.9 (1.23): held; p99 <= 100 ms (120.00): MISSED"; got != want {
		t.Errorf("describeGoals(values=true) = %q; want %q", got, want)
	}
}
