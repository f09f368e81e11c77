package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Result is one scenario's figures on one workload (one JSON object).
type Result struct {
	Scenario          string  `json:"scenario"`
	Workload          string  `json:"workload"`
	WorkloadDesc      string  `json:"workload_description"`
	Transactions      int64   `json:"transactions"`
	Changes           int64   `json:"changes"`
	Events            int64   `json:"events"`             // low-level events stored (or mapped, capture)
	Records           int64   `json:"integration_events"` // integration events the rules make of them
	Appends           int64   `json:"appends,omitempty"`  // store, full: append calls to the store (events over appends is the batching)
	Unchanged         int64   `json:"unchanged_toast_changes,omitempty"`
	WALBytes          int64   `json:"wal_bytes,omitempty"`
	Seconds           float64 `json:"seconds"`
	ChangesPerSec     float64 `json:"changes_per_sec"`
	EventsPerSec      float64 `json:"events_per_sec"`
	RecordsPerSec     float64 `json:"integration_events_per_sec,omitempty"`
	CPUSecPerMChanges float64 `json:"cpu_seconds_per_million_changes"` // the worker's
	PeakRSSMiB        float64 `json:"peak_rss_mib"`                    // the worker's

	// The limit: a backend decoding the same WAL from its own slot
	// (pg_logical_slot_get_binary_changes, no transport), drained first and
	// last in the run; the mean of the two.
	LimitSeconds    float64  `json:"limit_seconds,omitempty"`
	LimitBefore     float64  `json:"limit_before_seconds,omitempty"`
	LimitAfter      float64  `json:"limit_after_seconds,omitempty"`
	LimitChangesSec float64  `json:"limit_changes_per_sec,omitempty"`
	RatioToLimit    float64  `json:"ratio_to_limit,omitempty"`
	LimitCPUSecPerM *float64 `json:"limit_backend_cpu_seconds_per_million_changes,omitempty"`
	// The second reference: pg_recvlogical draining its own slot into
	// /dev/null, before and after the scenarios; the mean of the two.
	RecvlogicalSeconds    float64 `json:"recvlogical_seconds,omitempty"`
	RecvlogicalBefore     float64 `json:"recvlogical_before_seconds,omitempty"`
	RecvlogicalAfter      float64 `json:"recvlogical_after_seconds,omitempty"`
	RecvlogicalChangesSec float64 `json:"recvlogical_changes_per_sec,omitempty"`
	RatioToRecvlogical    float64 `json:"ratio_to_recvlogical,omitempty"`
	// pg_recvlogical's CPU (its own, from wait4) plus the walsender serving
	// it (sampled every 5 ms while it runs; it exits with pg_recvlogical, so
	// its last few ms are missed), and their sum.
	RecvlogicalCPUSecPerM          *float64 `json:"recvlogical_cpu_seconds_per_million_changes,omitempty"`
	RecvlogicalClientCPUSecPerM    *float64 `json:"recvlogical_client_cpu_seconds_per_million_changes,omitempty"`
	RecvlogicalWalsenderCPUSecPerM *float64 `json:"recvlogical_walsender_cpu_seconds_per_million_changes,omitempty"`

	// The other processes doing the scenario's work, in CPU seconds per
	// million changes over the same interval as the worker's (nil: the
	// scenario has no such process, or CPUUnknown says why it could not be
	// read).
	ServerCPUSecPerM    *float64 `json:"server_cpu_seconds_per_million_changes,omitempty"`    // the KurrentDB-compatible server child
	WalsenderCPUSecPerM *float64 `json:"walsender_cpu_seconds_per_million_changes,omitempty"` // the walsender decoding the scenario's slot
	BrokerCPUSecPerM    *float64 `json:"broker_cpu_seconds_per_million_changes,omitempty"`    // the Kafka broker (full, publish, latency)
	MachineCPUSecPerM   *float64 `json:"machine_cpu_seconds_per_million_changes,omitempty"`   // worker + server + walsender + broker
	MachineCPUs         int      `json:"machine_cpus,omitempty"`
	// MachineCeiling is MachineCPUs × 1e6 / MachineCPUSecPerM: the
	// changes/s at which these processes alone would fill every CPU.
	MachineCeiling *float64 `json:"machine_ceiling_changes_per_sec,omitempty"`
	// The machine as a whole over the same interval (/proc/stat), in mean
	// CPUs: busy in any process; the part of that the processes above do
	// not account for (Postgres's other backends, pgbench, the bench's own
	// consumer, and anything else that ran); and steal, the time the
	// hypervisor ran other guests while this one had work. A run with much
	// outside or steal did not have the machine to itself.
	HostBusyCPUs    *float64 `json:"host_busy_cpus,omitempty"`
	HostOutsideCPUs *float64 `json:"host_outside_cpus,omitempty"`
	HostStealCPUs   *float64 `json:"host_steal_cpus,omitempty"`
	CPUUnknown      []string `json:"cpu_unknown,omitempty"` // what could not be measured, and why
	RateTxPerSec    int      `json:"rate_tx_per_sec,omitempty"`
	LatencyP50Ms    float64  `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms    float64  `json:"latency_p99_ms,omitempty"`
	LatencyMaxMs    float64  `json:"latency_max_ms,omitempty"`
	// StoredP50Ms, StoredP99Ms: the latency run's commit to the store's
	// write of the event (its created time).
	StoredP50Ms float64 `json:"stored_p50_ms,omitempty"`
	StoredP99Ms float64 `json:"stored_p99_ms,omitempty"`
	// Tail: where the slowest 1% of the latency run's records (latency at
	// least p99) spent their time, the mean of each stage.
	Tail *Stages `json:"tail_stages,omitempty"`
	// ProducedP50Ms, ProducedP99Ms: the latency run's commit to the
	// record's producer timestamp, the part before the Kafka transaction.
	ProducedP50Ms float64 `json:"produced_p50_ms,omitempty"`
	ProducedP99Ms float64 `json:"produced_p99_ms,omitempty"`
	// WarmupP50Ms, WarmupP99Ms: the latency run's warm-up at the same rate
	// (-latency-warmup), not counted in the figures above.
	WarmupP50Ms     float64 `json:"warmup_p50_ms,omitempty"`
	WarmupP99Ms     float64 `json:"warmup_p99_ms,omitempty"`
	SlotLagP50Bytes int64   `json:"slot_lag_p50_bytes,omitempty"` // latency run: WAL written minus confirmed by capture, sampled every 250 ms
	SlotLagMaxBytes int64   `json:"slot_lag_max_bytes,omitempty"`
	// Autogroup is the kernel's autogroup scheduling during the run
	// (setAutogroup).
	Autogroup string `json:"sched_autogroup,omitempty"`
	Goals     []Goal `json:"goals"`
	GoalsHeld bool   `json:"goals_held"`

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

// rssGoalMiB is 150 MB (10^6 bytes) in MiB, the worker's peak RSS goal
// through the bulk load.
const rssGoalMiB = 150e6 / (1 << 20)

// The acceptance figures (issue 19), in CPU seconds per million changes, by
// "workload/scenario": the worker's own, and the worker's with the store
// server's, the Kafka broker's and the walsender's. They are set for the
// default scale (the bulk workload's 1,000,000-row transaction; pgbench at
// scale 5, 4 clients, 10 s).
var (
	workerCPUGoals  = map[string]float64{"bulk/store-0ms": 23, "bulk/full": 45, "pgbench/full": 18}
	machineCPUGoals = map[string]float64{"bulk/full": 95}
)

// latencyGoalMs is the p99 commit-to-Kafka latency goal of the latency run.
const latencyGoalMs = 100

// evaluate sets the goals that apply to r (store0 is the same workload's
// store-0ms result, if it ran).
func (r *Result) evaluate(store0 *Result) {
	key := r.Workload + "/" + r.Scenario
	if g, ok := workerCPUGoals[key]; ok {
		r.Goals = append(r.Goals, Goal{Goal: fmt.Sprintf("worker CPU <= %g s per million changes", g), Value: round2(r.CPUSecPerMChanges), Held: r.CPUSecPerMChanges <= g})
	}
	if g, ok := machineCPUGoals[key]; ok {
		goal := Goal{Goal: fmt.Sprintf("worker + server + broker + walsender CPU <= %g s per million changes", g)}
		if r.MachineCPUSecPerM != nil {
			goal.Value, goal.Held = round2(*r.MachineCPUSecPerM), *r.MachineCPUSecPerM <= g
		} else {
			goal.Goal += " (unknown: a process's CPU could not be read)"
		}
		r.Goals = append(r.Goals, goal)
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
	if r.Workload == "bulk" {
		r.Goals = append(r.Goals, Goal{Goal: "worker peak RSS through the bulk load <= 150 MB (143 MiB)", Value: round2(r.PeakRSSMiB), Held: r.PeakRSSMiB <= rssGoalMiB})
	}
	r.GoalsHeld = true
	for _, g := range r.Goals {
		r.GoalsHeld = r.GoalsHeld && g.Held
	}
	if r.Goals == nil {
		r.Goals = []Goal{}
	}
}

// setReferences sets r's reference figures from the workload's drains
// (each drained the workload's changes): the limit's (before, after) and
// pg_recvlogical's, each the mean of its two drains, and r's ratio to each.
func (r *Result) setReferences(changes int64, limit, recv [2]drain) {
	perM := func(sec float64) *float64 { v := sec / float64(changes) * 1e6; return &v }
	mean := (limit[0].dur + limit[1].dur) / 2
	r.LimitSeconds, r.LimitBefore, r.LimitAfter = mean.Seconds(), limit[0].dur.Seconds(), limit[1].dur.Seconds()
	r.LimitChangesSec = float64(changes) / mean.Seconds()
	r.RatioToLimit = r.ChangesPerSec / r.LimitChangesSec
	if cpu, ok := r.meanCPU("limit", limit); ok {
		r.LimitCPUSecPerM = perM(cpu)
	}
	mean = (recv[0].dur + recv[1].dur) / 2
	r.RecvlogicalSeconds, r.RecvlogicalBefore, r.RecvlogicalAfter = mean.Seconds(), recv[0].dur.Seconds(), recv[1].dur.Seconds()
	r.RecvlogicalChangesSec = float64(changes) / mean.Seconds()
	r.RatioToRecvlogical = r.ChangesPerSec / r.RecvlogicalChangesSec
	client := perM((recv[0].recvCPU + recv[1].recvCPU) / 2)
	r.RecvlogicalClientCPUSecPerM = client
	if ws, ok := r.meanCPU("pg_recvlogical", recv); ok {
		r.RecvlogicalWalsenderCPUSecPerM = perM(ws)
		r.RecvlogicalCPUSecPerM = perM(ws + (recv[0].recvCPU+recv[1].recvCPU)/2)
	}
}

// meanCPU is the mean backend (or walsender) CPU seconds of the drains
// that could be read; a drain that could not is named in CPUUnknown.
func (r *Result) meanCPU(what string, drains [2]drain) (float64, bool) {
	var sum float64
	n := 0
	for i, d := range drains {
		if d.wsErr != nil {
			r.CPUUnknown = append(r.CPUUnknown, fmt.Sprintf("%s drain %d: %v", what, i+1, d.wsErr))
			continue
		}
		sum += d.wsCPU
		n++
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
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
	if r.RatioToLimit > 0 {
		s += fmt.Sprintf("  ratio %.2f to the limit (%.0f changes/s), %.2f to pg_recvlogical (%.0f)", r.RatioToLimit, r.LimitChangesSec, r.RatioToRecvlogical, r.RecvlogicalChangesSec)
	}
	s += fmt.Sprintf("  worker %.1f CPU s/M changes  peak RSS %.0f MiB", r.CPUSecPerMChanges, r.PeakRSSMiB)
	if r.Appends > 0 {
		s += fmt.Sprintf("  %.2f events/append", float64(r.Events)/float64(r.Appends))
	}
	s += r.cpuLine()
	if r.LatencyP99Ms > 0 {
		s += fmt.Sprintf("  latency p50 %.1f ms p99 %.1f ms max %.1f ms (to the store: p50 %.1f ms p99 %.1f ms; to the producer: p50 %.1f ms p99 %.1f ms)", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.StoredP50Ms, r.StoredP99Ms, r.ProducedP50Ms, r.ProducedP99Ms)
		if t := r.Tail; t != nil {
			s += fmt.Sprintf(" (the slowest %d: capture %.1f ms + promotion %.1f ms + Kafka %.1f ms on average)", t.Records, t.CaptureMs, t.PromoteMs, t.KafkaMs)
		}
		if r.WarmupP99Ms > 0 {
			s += fmt.Sprintf(" (warm-up, not counted: p50 %.1f ms p99 %.1f ms)", r.WarmupP50Ms, r.WarmupP99Ms)
		}
	}
	if len(r.Goals) > 0 {
		s += "  [" + describeGoals(r.Goals, false) + "]"
	}
	return s
}

// usesServer, usesWalsender and usesBroker say which processes besides the
// worker do a scenario's work.
func usesServer(scenario string) bool    { return scenario != "capture" }
func usesWalsender(scenario string) bool { return scenario != "publish" }
func usesBroker(scenario string) bool {
	return scenario == "full" || scenario == "publish" || scenario == "latency"
}

// cpuLine is the machine-CPU part of line: the other processes' CPU s per
// M changes, their sum with the worker's and the ceiling it implies, and
// the references'; "?" for a figure that could not be read.
func (r *Result) cpuLine() string {
	f := cpuFig
	var s string
	if r.ServerCPUSecPerM != nil || usesServer(r.Scenario) {
		s += "  server " + f(r.ServerCPUSecPerM)
	}
	if r.WalsenderCPUSecPerM != nil || usesWalsender(r.Scenario) {
		s += "  walsender " + f(r.WalsenderCPUSecPerM)
	}
	if r.BrokerCPUSecPerM != nil || usesBroker(r.Scenario) {
		s += "  broker " + f(r.BrokerCPUSecPerM)
	}
	s += "  machine " + f(r.MachineCPUSecPerM) + " CPU s/M changes"
	if r.MachineCeiling != nil {
		s += fmt.Sprintf(" (ceiling %.0f changes/s on %d CPUs)", *r.MachineCeiling, r.MachineCPUs)
	}
	if r.HostBusyCPUs != nil {
		s += fmt.Sprintf("  host %.2f of %d CPUs busy (%s outside these processes), steal %.2f", *r.HostBusyCPUs, runtime.NumCPU(), cpusFig(r.HostOutsideCPUs), *r.HostStealCPUs)
	}
	if r.LimitChangesSec > 0 {
		s += "  limit: backend " + f(r.LimitCPUSecPerM) + " CPU s/M changes"
	}
	if r.RecvlogicalClientCPUSecPerM != nil {
		s += "  pg_recvlogical " + f(r.RecvlogicalCPUSecPerM) + " CPU s/M changes (walsender " + f(r.RecvlogicalWalsenderCPUSecPerM) + " + client " + f(r.RecvlogicalClientCPUSecPerM) + ")"
	}
	if len(r.CPUUnknown) > 0 {
		s += "  [CPU unknown: " + strings.Join(r.CPUUnknown, "; ") + "]"
	}
	return s
}
