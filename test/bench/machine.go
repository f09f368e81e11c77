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
	b.WriteString("## Machine CPU\n\nCPU seconds per million changes of every process doing a scenario's work on this machine, over the same interval as its throughput: the worker, the KurrentDB-compatible server child and the Kafka broker (utime + stime from `/proc/<pid>/stat`), and the Postgres walsender decoding the scenario's slot (its run time from `/proc/<pid>/schedstat`); the sum, and the ceiling it implies, the machine's CPUs × 10^6 / the sum, also as a ratio to the limit's changes/s. The limit is a backend decoding the same WAL (`pg_logical_slot_get_binary_changes`, its CPU from `/proc/<pid>/schedstat`; no client); pg_recvlogical's is its walsender's plus its own (from wait4); each the mean of its two drains. Not counted: Postgres's other backends and the bench's own process (its Kafka consumer). The machine's columns are from `/proc/stat` over the same interval, in mean CPUs: busy in any process, of which outside these processes (Postgres's other backends, pgbench, the bench's consumer and anything else that ran), and steal (the hypervisor running other guests while this one had work): a run with much outside or steal did not have the machine to itself. ? means unknown (see below the table).\n\n")
	b.WriteString("| workload | scenario | worker | server | walsender | broker | sum | ceiling changes/s (× limit) | CPUs busy | machine: busy (outside), steal | limit: backend | pg_recvlogical: walsender + client |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var unknown []string
	for _, r := range results {
		ceiling, busy, limit, recv := "?", "?", "", ""
		if r.MachineCeiling != nil {
			ceiling = fmt.Sprintf("%.0f", *r.MachineCeiling)
			if r.LimitChangesSec > 0 {
				ceiling += fmt.Sprintf(" (%.2f)", *r.MachineCeiling/r.LimitChangesSec)
			}
			busy = fmt.Sprintf("%.2f of %d", *r.MachineCPUSecPerM*r.ChangesPerSec/1e6, r.MachineCPUs)
		}
		if r.LimitChangesSec > 0 {
			limit = cpuFig(r.LimitCPUSecPerM)
		}
		if r.RecvlogicalClientCPUSecPerM != nil {
			recv = fmt.Sprintf("%s + %s = %s", cpuFig(r.RecvlogicalWalsenderCPUSecPerM), cpuFig(r.RecvlogicalClientCPUSecPerM), cpuFig(r.RecvlogicalCPUSecPerM))
		}
		part := func(uses bool, v *float64) string {
			if !uses {
				return "–"
			}
			return cpuFig(v)
		}
		host := "?"
		if r.HostBusyCPUs != nil {
			host = fmt.Sprintf("%.2f (%s), %.2f", *r.HostBusyCPUs, cpusFig(r.HostOutsideCPUs), *r.HostStealCPUs)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Workload, r.Scenario, r.CPUSecPerMChanges,
			part(usesServer(r.Scenario), r.ServerCPUSecPerM), part(usesWalsender(r.Scenario), r.WalsenderCPUSecPerM),
			part(usesBroker(r.Scenario), r.BrokerCPUSecPerM), cpuFig(r.MachineCPUSecPerM), ceiling, busy, host, limit, recv)
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
		switch r.Scenario {
		case "store-0ms", "store-2ms", "full":
		default:
			continue
		}
		if first {
			b.WriteString("## Where the time goes\n\n")
			first = false
		}
		fmt.Fprintf(&b, "**%s %s** (%.0f changes/s, %.2f of the limit): %s\n\n", r.Workload, r.Scenario, r.ChangesPerSec, r.RatioToLimit, whereTimeGoes(&r))
	}
	return b.String()
}

// whereTimeGoes says, from r's figures, how the machine's CPU is shared
// between the processes, what that caps the machine at against the limit,
// and how far the worker is from its CPU goal, if it has one.
func whereTimeGoes(r *Result) string {
	if r.MachineCPUSecPerM == nil {
		return "not every process's CPU could be read (" + strings.Join(r.CPUUnknown, "; ") + "), so no sum."
	}
	sum := *r.MachineCPUSecPerM
	pct := func(v float64) float64 { return 100 * v / sum }
	parts := []string{fmt.Sprintf("the worker used %.1f CPU s (%.0f%%)", r.CPUSecPerMChanges, pct(r.CPUSecPerMChanges))}
	for _, p := range []struct {
		what string
		v    *float64
	}{{"the server", r.ServerCPUSecPerM}, {"the walsender", r.WalsenderCPUSecPerM}, {"the Kafka broker", r.BrokerCPUSecPerM}} {
		if p.v != nil {
			parts = append(parts, fmt.Sprintf("%s %.1f (%.0f%%)", p.what, *p.v, pct(*p.v)))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "per million changes %s and %s: %.1f in all, so they kept %.2f of the %d CPUs busy over the %.2f s measured, and these processes alone cap the machine at %.0f changes/s",
		strings.Join(parts[:len(parts)-1], ", "), parts[len(parts)-1], sum, sum*r.ChangesPerSec/1e6, r.MachineCPUs, r.Seconds, *r.MachineCeiling)
	if r.LimitChangesSec > 0 {
		fmt.Fprintf(&b, ", %.2f of the limit's %.0f", *r.MachineCeiling/r.LimitChangesSec, r.LimitChangesSec)
	}
	b.WriteString(".")
	if r.LimitCPUSecPerM != nil {
		fmt.Fprintf(&b, " Decoding the same WAL in a backend took %.1f CPU s per million changes", *r.LimitCPUSecPerM)
		if r.WalsenderCPUSecPerM != nil && *r.LimitCPUSecPerM > 0 {
			fmt.Fprintf(&b, "; the scenario's walsender used %.2f × that", *r.WalsenderCPUSecPerM / *r.LimitCPUSecPerM)
		}
		b.WriteString(".")
	}
	if g, ok := workerCPUGoals[r.Workload+"/"+r.Scenario]; ok {
		fmt.Fprintf(&b, " The worker's goal is %g CPU s per million changes: it used %.2f × that.", g, r.CPUSecPerMChanges/g)
	}
	if g, ok := machineCPUGoals[r.Workload+"/"+r.Scenario]; ok {
		fmt.Fprintf(&b, " The goal for the four processes is %g: they used %.2f × that.", g, sum/g)
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

// cpusFig is a figure in CPUs, or "?" when unknown.
func cpusFig(v *float64) string {
	if v == nil {
		return "?"
	}
	return fmt.Sprintf("%.2f", *v)
}
