package main

import (
	"fmt"
	"strings"
)

// machineCPU is the report's machine-CPU table and its "Where the time
// goes" section for each store and full result, computed from the results'
// figures alone.
func machineCPU(results []Result) string {
	var b strings.Builder
	b.WriteString("## Machine CPU\n\nCPU seconds per million changes of every process doing a scenario's work on this machine, over the same interval as its throughput: the worker and the KurrentDB-compatible server child (utime + stime from `/proc/<pid>/stat`) and the Postgres walsender decoding the scenario's slot (its run time from `/proc/<pid>/schedstat`); the sum, and the ceiling it implies, the machine's CPUs × 10^6 / the sum. The baseline is pg_recvlogical (from wait4) plus the walsender serving it (mean of the two drains). Not counted: the Kafka broker (a JVM outside the bench: full, publish, latency), Postgres's other backends and the bench's own process. ? means unknown (see below the table).\n\n")
	b.WriteString("| workload | scenario | worker | server | walsender | sum | ceiling changes/s (× baseline) | CPUs busy | baseline: walsender + pg_recvlogical |\n|---|---|---|---|---|---|---|---|---|\n")
	var unknown []string
	for _, r := range results {
		ceiling, busy, base := "?", "?", ""
		if r.MachineCeiling != nil {
			ceiling = fmt.Sprintf("%.0f", *r.MachineCeiling)
			if r.BaselineChangesSec > 0 {
				ceiling += fmt.Sprintf(" (%.2f)", *r.MachineCeiling/r.BaselineChangesSec)
			}
			busy = fmt.Sprintf("%.2f of %d", *r.MachineCPUSecPerM*r.ChangesPerSec/1e6, r.MachineCPUs)
		}
		if r.BaselineRecvlogicalCPUSecPerM != nil {
			base = fmt.Sprintf("%s + %s = %s", cpuFig(r.BaselineWalsenderCPUSecPerM), cpuFig(r.BaselineRecvlogicalCPUSecPerM), cpuFig(r.BaselineCPUSecPerM))
		}
		server, walsender := "–", "–"
		if r.Scenario != "capture" {
			server = cpuFig(r.ServerCPUSecPerM)
		}
		if r.Scenario != "publish" {
			walsender = cpuFig(r.WalsenderCPUSecPerM)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %s | %s | %s | %s | %s | %s |\n", r.Workload, r.Scenario, r.CPUSecPerMChanges, server, walsender, cpuFig(r.MachineCPUSecPerM), ceiling, busy, base)
		for _, u := range r.CPUUnknown {
			unknown = append(unknown, fmt.Sprintf("- %s %s: %s\n", r.Workload, r.Scenario, u))
		}
	}
	if len(unknown) > 0 {
		b.WriteString("\nUnknown:\n" + strings.Join(unknown, ""))
	}
	b.WriteString("\n")
	first := true
	for _, r := range results {
		goal, ok := ratioGoal(r.Scenario)
		if !ok {
			continue
		}
		if first {
			b.WriteString("## Where the time goes\n\n")
			first = false
		}
		fmt.Fprintf(&b, "**%s %s** (%.0f changes/s, %.2f of the baseline): %s\n\n", r.Workload, r.Scenario, r.ChangesPerSec, r.Ratio, whereTimeGoes(&r, goal))
	}
	return b.String()
}

// ratioGoal is the ratio to the baseline a scenario is held to (store-2ms:
// the capture → store goal, though its own goal is relative to store-0ms).
func ratioGoal(scenario string) (float64, bool) {
	switch scenario {
	case "store-0ms", "store-2ms":
		return 0.7, true
	case "full":
		return 0.5, true
	}
	return 0, false
}

// whereTimeGoes says, from r's figures, how the machine's CPU is shared
// between the processes and what reaching goal × the baseline would take.
func whereTimeGoes(r *Result, goal float64) string {
	if r.MachineCPUSecPerM == nil || r.ServerCPUSecPerM == nil || r.WalsenderCPUSecPerM == nil {
		return "not every process's CPU could be read (" + strings.Join(r.CPUUnknown, "; ") + "), so no sum."
	}
	sum, srv, ws := *r.MachineCPUSecPerM, *r.ServerCPUSecPerM, *r.WalsenderCPUSecPerM
	pct := func(v float64) float64 { return 100 * v / sum }
	var b strings.Builder
	fmt.Fprintf(&b, "per million changes the worker used %.1f CPU s (%.0f%%), the server %.1f (%.0f%%) and the walsender %.1f (%.0f%%): %.1f in all",
		r.CPUSecPerMChanges, pct(r.CPUSecPerMChanges), srv, pct(srv), ws, pct(ws), sum)
	if r.CPUNotCounted != "" {
		fmt.Fprintf(&b, " (without %s)", r.CPUNotCounted)
	}
	fmt.Fprintf(&b, ", so they kept %.2f of the %d CPUs busy over the %.2f s measured, and these processes alone cap the machine at %.0f changes/s",
		sum*r.ChangesPerSec/1e6, r.MachineCPUs, r.Seconds, *r.MachineCeiling)
	if r.BaselineChangesSec <= 0 {
		return b.String() + "."
	}
	fmt.Fprintf(&b, ", %.2f of the baseline's %.0f.", *r.MachineCeiling/r.BaselineChangesSec, r.BaselineChangesSec)
	if r.BaselineWalsenderCPUSecPerM != nil {
		fmt.Fprintf(&b, " pg_recvlogical's drain used %.1f CPU s per million changes (its walsender %.1f, pg_recvlogical %.1f), so during the drain its walsender kept %.2f CPUs busy and pg_recvlogical %.2f; the scenario's walsender used %.2f × the baseline walsender's CPU per change.",
			*r.BaselineCPUSecPerM, *r.BaselineWalsenderCPUSecPerM, *r.BaselineRecvlogicalCPUSecPerM,
			*r.BaselineWalsenderCPUSecPerM*r.BaselineChangesSec/1e6, *r.BaselineRecvlogicalCPUSecPerM*r.BaselineChangesSec/1e6, ws / *r.BaselineWalsenderCPUSecPerM)
	}
	target := goal * r.BaselineChangesSec
	others := target * (srv + ws) / 1e6
	worker := target * r.CPUSecPerMChanges / 1e6
	fmt.Fprintf(&b, " At %.1f of the baseline (%.0f changes/s) the server and walsender alone would need %.2f CPUs and the worker at today's cost %.2f: %.2f of %d.",
		goal, target, others, worker, others+worker, r.MachineCPUs)
	if r.MachineCPUs > 0 && others < float64(r.MachineCPUs) {
		// The worker's budget: what the CPUs the server and walsender leave allow it.
		fmt.Fprintf(&b, " To fit, the worker would have to use at most %.1f CPU s per million changes (%.2f × today's).",
			(float64(r.MachineCPUs)-others)/target*1e6, (float64(r.MachineCPUs)-others)/target*1e6/r.CPUSecPerMChanges)
	} else {
		b.WriteString(" The server and walsender alone exceed the machine at that rate.")
	}
	return b.String()
}

// cpuFig formats a CPU s per M changes figure, "?" when unknown.
func cpuFig(v *float64) string {
	if v == nil {
		return "?"
	}
	return fmt.Sprintf("%.1f", *v)
}
