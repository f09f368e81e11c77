package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// writeOutputs writes results.json (one object a line), report.md and the
// PNG plots into o.outDir.
func writeOutputs(o options, results []Result, wall time.Duration) error {
	if o.outDir == "" {
		return nil
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	var js strings.Builder
	for _, r := range results {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		js.Write(b)
		js.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(o.outDir, "results.json"), []byte(js.String()), 0o644); err != nil {
		return err
	}
	plots, err := writePlots(o.outDir, results)
	if err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	return os.WriteFile(filepath.Join(o.outDir, "report.md"), []byte(markdown(o, results, wall, plots)), 0o644)
}

func command(o options) string {
	d := defaultOptions()
	args := []string{"go run ./test/bench"}
	add := func(changed bool, f string, v any) {
		if changed {
			args = append(args, fmt.Sprintf("-%s %v", f, v))
		}
	}
	add(true, "scenario", o.scenario)
	add(o.workload != d.workload, "workload", o.workload)
	add(o.scale != d.scale, "scale", o.scale)
	add(o.duration != d.duration, "duration", o.duration)
	add(o.clients != d.clients, "clients", o.clients)
	add(o.bulkRows != d.bulkRows, "bulk-rows", o.bulkRows)
	add(o.wideRows != d.wideRows, "wide-rows", o.wideRows)
	add(o.rate != d.rate, "rate", o.rate)
	add(o.latencyDuration != d.latencyDuration, "latency-duration", o.latencyDuration)
	add(o.latencyWarmup != d.latencyWarmup, "latency-warmup", o.latencyWarmup)
	add(o.batchInterval != 0, "batch-interval", o.batchInterval)
	add(o.maxPending != 0, "max-pending-bytes", o.maxPending)
	add(o.noBatchAppend, "no-batch-append", true)
	add(o.autogroup != d.autogroup, "autogroup", o.autogroup)
	if o.jsonOut {
		args = append(args, "-json")
	}
	return strings.Join(args, " ")
}

func markdown(o options, results []Result, wall time.Duration, plots []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chronicler benchmark\n\n`%s`: %s, %d CPUs, %s, total wall time %s (Postgres and Kafka start included); load average at the end %s (other work on the machine shows here).\n\n",
		command(o), time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version(), wall.Round(time.Second), loadAvg())
	if len(results) > 0 && results[0].Autogroup != "" {
		fmt.Fprintf(&b, "The kernel's autogroup scheduling: %s.\n\n", results[0].Autogroup)
	}
	fmt.Fprintln(&b, "Workloads:")
	seen := map[string]bool{}
	for _, r := range results {
		if !seen[r.Workload] {
			seen[r.Workload] = true
			fmt.Fprintf(&b, "- `%s`: %s; %d changes, %d low-level events, %d integration events", r.Workload, r.WorkloadDesc, r.Changes, r.Events, r.Records)
			if r.Unchanged > 0 {
				fmt.Fprintf(&b, ", %d changes carrying an unchanged-toast column", r.Unchanged)
			}
			if r.LimitChangesSec > 0 {
				fmt.Fprintf(&b, "; the limit (a backend decoding the slot) %.0f changes/s (drains %.2f s first, %.2f s last); pg_recvlogical %.0f changes/s (%.2f s before, %.2f s after)",
					r.LimitChangesSec, r.LimitBefore, r.LimitAfter, r.RecvlogicalChangesSec, r.RecvlogicalBefore, r.RecvlogicalAfter)
			}
			b.WriteString(".\n")
		}
	}
	fmt.Fprintln(&b, "\n| workload | scenario | changes/s | events/s | integration events/s | ratio to the limit | ratio to pg_recvlogical | worker CPU s / M changes | peak RSS MiB | latency p50 / p99 / max ms | goals |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		rec, ratio, ratio2, lat := "", "", "", ""
		if r.RecordsPerSec > 0 {
			rec = fmt.Sprintf("%.0f", r.RecordsPerSec)
		}
		if r.RatioToLimit > 0 {
			ratio, ratio2 = fmt.Sprintf("%.2f", r.RatioToLimit), fmt.Sprintf("%.2f", r.RatioToRecvlogical)
		}
		if r.LatencyP99Ms > 0 {
			lat = fmt.Sprintf("%.1f / %.1f / %.1f", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %s | %s | %s | %.1f | %.0f | %s | %s |\n",
			r.Workload, r.Scenario, r.ChangesPerSec, r.EventsPerSec, rec, ratio, ratio2, r.CPUSecPerMChanges, r.PeakRSSMiB, lat, describeGoals(r.Goals, true))
	}
	fmt.Fprintf(&b, "\nThe worker CPU seconds and peak RSS (VmHWM) are the Chronicler worker process's own; the KurrentDB-compatible server, Postgres and Kafka run in other processes on the same %d CPUs (the machine CPU section below adds the server's, the walsender's and the broker's). Ratios are changes/s over the limit's (a backend decoding the same WAL from its own slot, drained first and last) and over pg_recvlogical's (drained before and after the scenarios). A scenario's time runs from the worker's start to the end marker durable (store), seen (capture), or the last integration event read by a read_committed consumer (full, publish). The latency run's changes/s is the offered rate, not a capacity.\n\n", runtime.NumCPU())
	b.WriteString(machineCPU(results))
	for _, p := range plots {
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(p, ".png"), p)
	}
	return b.String()
}

// loadAvg is the machine's 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
