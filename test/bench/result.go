package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Result is one scenario's figures on one workload (one JSON object).
type Result struct {
	Scenario           string  `json:"scenario"`
	Workload           string  `json:"workload"`
	WorkloadDesc       string  `json:"workload_description"`
	Transactions       int64   `json:"transactions"`
	Changes            int64   `json:"changes"`
	Events             int64   `json:"events"`             // low-level events stored (or mapped, capture)
	Records            int64   `json:"integration_events"` // integration events the rules make of them
	Appends            int64   `json:"appends,omitempty"`  // store, full: append calls to the store (events over appends is the batching)
	Unchanged          int64   `json:"unchanged_toast_changes,omitempty"`
	WALBytes           int64   `json:"wal_bytes,omitempty"`
	BaselineSeconds    float64 `json:"baseline_seconds,omitempty"` // mean of the drains before and after
	BaselineBefore     float64 `json:"baseline_before_seconds,omitempty"`
	BaselineAfter      float64 `json:"baseline_after_seconds,omitempty"`
	BaselineChangesSec float64 `json:"baseline_changes_per_sec,omitempty"`
	Seconds            float64 `json:"seconds"`
	ChangesPerSec      float64 `json:"changes_per_sec"`
	EventsPerSec       float64 `json:"events_per_sec"`
	RecordsPerSec      float64 `json:"integration_events_per_sec,omitempty"`
	Ratio              float64 `json:"ratio_to_baseline,omitempty"`
	CPUSecPerMChanges  float64 `json:"cpu_seconds_per_million_changes"`
	PeakRSSMiB         float64 `json:"peak_rss_mib"`

	// The machine's CPU: the other processes doing the scenario's work,
	// in CPU seconds per million changes over the same interval as the
	// worker's (nil: the scenario has no such process, or CPUUnknown says
	// why it could not be read). The Kafka broker is outside the bench and
	// never counted (CPUNotCounted says so where it does work).
	ServerCPUSecPerM    *float64 `json:"server_cpu_seconds_per_million_changes,omitempty"`    // the KurrentDB-compatible server child
	WalsenderCPUSecPerM *float64 `json:"walsender_cpu_seconds_per_million_changes,omitempty"` // the walsender decoding the scenario's slot
	MachineCPUSecPerM   *float64 `json:"machine_cpu_seconds_per_million_changes,omitempty"`   // worker + server + walsender
	MachineCPUs         int      `json:"machine_cpus,omitempty"`
	// MachineCeiling is MachineCPUs × 1e6 / MachineCPUSecPerM: the
	// changes/s at which these processes alone would fill every CPU.
	MachineCeiling *float64 `json:"machine_ceiling_changes_per_sec,omitempty"`
	// The baseline drains' CPU (mean of before and after): pg_recvlogical
	// (its own, from wait4) plus the walsender serving it (sampled every
	// 5 ms while it runs; it exits with pg_recvlogical, so its last few ms
	// are missed).
	BaselineCPUSecPerM            *float64 `json:"baseline_cpu_seconds_per_million_changes,omitempty"`
	BaselineRecvlogicalCPUSecPerM *float64 `json:"baseline_recvlogical_cpu_seconds_per_million_changes,omitempty"`
	BaselineWalsenderCPUSecPerM   *float64 `json:"baseline_walsender_cpu_seconds_per_million_changes,omitempty"`
	CPUUnknown                    []string `json:"cpu_unknown,omitempty"`     // what could not be measured, and why
	CPUNotCounted                 string   `json:"cpu_not_counted,omitempty"` // work done outside the measured processes
	RateTxPerSec                  int      `json:"rate_tx_per_sec,omitempty"`
	LatencyP50Ms                  float64  `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms                  float64  `json:"latency_p99_ms,omitempty"`
	LatencyMaxMs                  float64  `json:"latency_max_ms,omitempty"`
	SlotLagP50Bytes               int64    `json:"slot_lag_p50_bytes,omitempty"` // latency run: WAL written minus confirmed by capture, sampled every 250 ms
	SlotLagMaxBytes               int64    `json:"slot_lag_max_bytes,omitempty"`
	Goals                         []Goal   `json:"goals"`
	GoalsHeld                     bool     `json:"goals_held"`

	start     time.Time
	series    []progress      // the worker's progress lines
	latencies []time.Duration // latency run: per integration event
	arrivals  []time.Time
}

// Goal is one goal of the issue, held against a figure of this result.
type Goal struct {
	Goal  string  `json:"goal"`
	Value float64 `json:"value"`
	Held  bool    `json:"held"`
}

// rssGoalMiB is 150 MB (10^6 bytes) in MiB, the peak RSS goal through the
// bulk load.
const rssGoalMiB = 150e6 / (1 << 20)

// ratioGoals are the throughput goals, each a ratio to the pg_recvlogical
// baseline of the same workload, by scenario.
var ratioGoals = map[string]float64{"capture": 0.9, "store-0ms": 0.7, "full": 0.5}

// latencyGoalMs is the p99 commit-to-Kafka latency goal of the latency run.
const latencyGoalMs = 100

// evaluate sets the goals that apply to r (store0 is the same workload's
// store-0ms result, if it ran).
func (r *Result) evaluate(store0 *Result) {
	ratio := func(min float64) {
		r.Goals = append(r.Goals, Goal{Goal: fmt.Sprintf("ratio to pg_recvlogical >= %.1f", min), Value: round2(r.Ratio), Held: r.Ratio >= min})
	}
	if min, ok := ratioGoals[r.Scenario]; ok {
		ratio(min)
	}
	switch r.Scenario {
	case "store-2ms":
		if store0 != nil && store0.ChangesPerSec > 0 {
			v := r.ChangesPerSec / store0.ChangesPerSec
			r.Goals = append(r.Goals, Goal{Goal: "changes/s >= 0.5 x store-0ms", Value: round2(v), Held: v >= 0.5})
		}
	case "latency":
		r.Goals = append(r.Goals, Goal{Goal: fmt.Sprintf("p99 commit-to-Kafka latency at %d tx/s <= %d ms", r.RateTxPerSec, latencyGoalMs), Value: round2(r.LatencyP99Ms), Held: r.LatencyP99Ms <= latencyGoalMs})
	}
	if r.Workload == "bulk" && (r.Scenario == "capture" || r.Scenario == "store-0ms" || r.Scenario == "store-2ms") {
		r.Goals = append(r.Goals, Goal{Goal: "peak RSS through the bulk load <= 150 MB (143 MiB)", Value: round2(r.PeakRSSMiB), Held: r.PeakRSSMiB <= rssGoalMiB})
	}
	r.GoalsHeld = true
	for _, g := range r.Goals {
		r.GoalsHeld = r.GoalsHeld && g.Held
	}
	if r.Goals == nil {
		r.Goals = []Goal{}
	}
}

// describeGoals lists the goals, each held or MISSED, with its value if
// values is set.
func describeGoals(gs []Goal, values bool) string {
	var parts []string
	for _, g := range gs {
		mark := "held"
		if !g.Held {
			mark = "MISSED"
		}
		if values {
			parts = append(parts, fmt.Sprintf("%s (%.2f): %s", g.Goal, g.Value, mark))
		} else {
			parts = append(parts, fmt.Sprintf("%s: %s", g.Goal, mark))
		}
	}
	return strings.Join(parts, "; ")
}

// setMachine sets the machine sum and ceiling from sum (CPU s per M
// changes of every measured process), if every part was known.
func (r *Result) setMachine(sum float64, known bool) {
	switch r.Scenario {
	case "full", "publish", "latency":
		r.CPUNotCounted = "the Kafka broker (a JVM outside the bench)"
	}
	if !known || sum <= 0 {
		return
	}
	r.MachineCPUs = runtime.NumCPU()
	ceiling := float64(r.MachineCPUs) * 1e6 / sum
	r.MachineCPUSecPerM, r.MachineCeiling = &sum, &ceiling
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// line is the result as one line of text (without -json).
func (r *Result) line() string {
	s := fmt.Sprintf("%-8s %-9s %9d changes %8.0f changes/s", r.Workload, r.Scenario, r.Changes, r.ChangesPerSec)
	if r.Ratio > 0 {
		s += fmt.Sprintf("  ratio %.2f to pg_recvlogical (%.0f changes/s)", r.Ratio, r.BaselineChangesSec)
	}
	s += fmt.Sprintf("  %.1f CPU s/M changes  peak RSS %.0f MiB", r.CPUSecPerMChanges, r.PeakRSSMiB)
	if r.Appends > 0 {
		s += fmt.Sprintf("  %.2f events/append", float64(r.Events)/float64(r.Appends))
	}
	s += r.cpuLine()
	if r.LatencyP99Ms > 0 {
		s += fmt.Sprintf("  latency p50 %.1f ms p99 %.1f ms max %.1f ms", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	}
	if len(r.Goals) > 0 {
		s += "  [" + describeGoals(r.Goals, false) + "]"
	}
	return s
}

// cpuLine is the machine-CPU part of line: the other processes' CPU s per
// M changes, their sum with the worker's and the ceiling it implies, and
// the baseline's; "?" for a figure that could not be read.
func (r *Result) cpuLine() string {
	f := cpuFig
	var s string
	if r.ServerCPUSecPerM != nil || r.Scenario != "capture" {
		s += "  server " + f(r.ServerCPUSecPerM)
	}
	if r.WalsenderCPUSecPerM != nil || r.Scenario != "publish" {
		s += "  walsender " + f(r.WalsenderCPUSecPerM)
	}
	s += "  machine " + f(r.MachineCPUSecPerM) + " CPU s/M changes"
	if r.MachineCeiling != nil {
		s += fmt.Sprintf(" (ceiling %.0f changes/s on %d CPUs)", *r.MachineCeiling, r.MachineCPUs)
	}
	if r.CPUNotCounted != "" {
		s += " without " + r.CPUNotCounted
	}
	if r.BaselineRecvlogicalCPUSecPerM != nil {
		s += "  baseline " + f(r.BaselineCPUSecPerM) + " CPU s/M changes (walsender " + f(r.BaselineWalsenderCPUSecPerM) + " + pg_recvlogical " + f(r.BaselineRecvlogicalCPUSecPerM) + ")"
	}
	if len(r.CPUUnknown) > 0 {
		s += "  [CPU unknown: " + strings.Join(r.CPUUnknown, "; ") + "]"
	}
	return s
}
