package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
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
	add(o.batchInterval != 0, "batch-interval", o.batchInterval)
	add(o.maxPending != 0, "max-pending-bytes", o.maxPending)
	add(o.noBatchAppend, "no-batch-append", true)
	if o.jsonOut {
		args = append(args, "-json")
	}
	return strings.Join(args, " ")
}

func markdown(o options, results []Result, wall time.Duration, plots []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Chronicler benchmark\n\n`%s`: %s, %d CPUs, %s, total wall time %s (Postgres and Kafka start included); load average at the end %s (other work on the machine shows here).\n\n",
		command(o), time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version(), wall.Round(time.Second), loadAvg())
	fmt.Fprintln(&b, "Workloads:")
	seen := map[string]bool{}
	for _, r := range results {
		if !seen[r.Workload] {
			seen[r.Workload] = true
			fmt.Fprintf(&b, "- `%s`: %s; %d changes, %d low-level events, %d integration events", r.Workload, r.WorkloadDesc, r.Changes, r.Events, r.Records)
			if r.Unchanged > 0 {
				fmt.Fprintf(&b, ", %d changes carrying an unchanged-toast column", r.Unchanged)
			}
			if r.BaselineChangesSec > 0 {
				fmt.Fprintf(&b, "; pg_recvlogical baseline %.0f changes/s (drains %.2f s before, %.2f s after)", r.BaselineChangesSec, r.BaselineBefore, r.BaselineAfter)
			}
			b.WriteString(".\n")
		}
	}
	fmt.Fprintln(&b, "\n| workload | scenario | changes/s | events/s | integration events/s | ratio to pg_recvlogical | CPU s / M changes | peak RSS MiB | latency p50 / p99 / max ms | goals |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		rec, ratio, lat := "", "", ""
		if r.RecordsPerSec > 0 {
			rec = fmt.Sprintf("%.0f", r.RecordsPerSec)
		}
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		if r.LatencyP99Ms > 0 {
			lat = fmt.Sprintf("%.1f / %.1f / %.1f", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %s | %s | %.1f | %.0f | %s | %s |\n",
			r.Workload, r.Scenario, r.ChangesPerSec, r.EventsPerSec, rec, ratio, r.CPUSecPerMChanges, r.PeakRSSMiB, lat, describeGoals(r.Goals, true))
	}
	b.WriteString("\nCPU seconds and peak RSS (VmHWM) are the Chronicler worker process's own; the KurrentDB-compatible server, Postgres and Kafka run in other processes on the same 2 cores (the machine CPU section below adds the server's and the walsender's). A scenario's time runs from the worker's start to the end marker durable (store), seen (capture), or the last integration event read by a read_committed consumer (full, publish). The latency run's changes/s is the offered rate, not a capacity.\n\n")
	b.WriteString(machineCPU(results))
	for _, p := range plots {
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(p, ".png"), p)
	}
	return b.String()
}

// writePlots draws throughput over time per workload (every scenario in
// changes/s equivalents) and the latency run's latency over time and
// distribution; it returns the file names.
func writePlots(dir string, results []Result) ([]string, error) {
	var files []string
	var workloads []string
	for _, r := range results {
		if r.series != nil && !slices.Contains(workloads, r.Workload) {
			workloads = append(workloads, r.Workload)
		}
	}
	for _, wl := range workloads {
		p := plot.New()
		p.Title.Text = "Throughput, workload " + wl
		p.X.Label.Text = "seconds since the worker started"
		p.Y.Label.Text = "changes/s (equivalent)"
		p.Legend.Top = true
		var lines []any
		for _, r := range results {
			if r.Workload != wl || len(r.series) == 0 {
				continue
			}
			lines = append(lines, r.Scenario, throughputXY(&r))
		}
		if err := plotutil.AddLines(p, lines...); err != nil {
			return nil, err
		}
		name := "throughput-" + wl + ".png"
		if err := p.Save(18*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		files = append(files, name)
	}
	for _, r := range results {
		if len(r.latencies) == 0 {
			continue
		}
		p := plot.New()
		p.Title.Text = fmt.Sprintf("Commit-to-Kafka latency at %d tx/s, per second", r.RateTxPerSec)
		p.X.Label.Text = "seconds since pgbench started"
		p.Y.Label.Text = "ms"
		p.Legend.Top = true
		p50, p99, pmax := latencySeries(&r)
		if err := plotutil.AddLines(p, "p50", p50, "p99", p99, "max", pmax); err != nil {
			return nil, err
		}
		if err := p.Save(18*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, "latency-time.png")); err != nil {
			return nil, err
		}
		h := plot.New()
		h.Title.Text = fmt.Sprintf("Commit-to-Kafka latency at %d tx/s: distribution (%d events)", r.RateTxPerSec, len(r.latencies))
		h.X.Label.Text = "ms"
		h.Y.Label.Text = "integration events"
		vals := make(plotter.Values, len(r.latencies))
		for i, d := range r.latencies {
			vals[i] = ms(d)
		}
		hist, err := plotter.NewHist(vals, 60)
		if err != nil {
			return nil, err
		}
		h.Add(hist)
		if err := h.Save(18*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, "latency-distribution.png")); err != nil {
			return nil, err
		}
		files = append(files, "latency-time.png", "latency-distribution.png")
	}
	return files, nil
}

// throughputXY turns the worker's cumulative counters into a rate over
// half-second windows, in changes/s equivalents: store scenarios count
// events, Kafka scenarios integration events, scaled by the workload's
// changes per event.
func throughputXY(r *Result) plotter.XYs {
	count := func(p progress) float64 {
		switch r.Scenario {
		case "capture":
			return float64(p.Changes)
		case "full", "publish":
			return float64(p.Records) * float64(r.Changes) / float64(max(r.Records, 1))
		default:
			return float64(p.Events) * float64(r.Changes) / float64(max(r.Events, 1))
		}
	}
	xy := plotter.XYs{{X: 0, Y: 0}}
	lastT, lastN := r.start, 0.0
	for _, p := range r.series {
		t := time.Unix(0, p.T)
		if dt := t.Sub(lastT).Seconds(); dt >= 0.5 {
			n := count(p)
			xy = append(xy, plotter.XY{X: t.Sub(r.start).Seconds(), Y: (n - lastN) / dt})
			lastT, lastN = t, n
		}
		if int64(count(p)) >= r.Changes { // done: the rest is idle
			break
		}
	}
	return xy
}

// latencySeries bins the latency run's events by the second they arrived in.
func latencySeries(r *Result) (p50, p99, pmax plotter.XYs) {
	bins := map[int][]time.Duration{}
	last := 0
	for i, at := range r.arrivals {
		s := int(at.Sub(r.start).Seconds())
		bins[s] = append(bins[s], r.latencies[i])
		last = max(last, s)
	}
	for s := 0; s <= last; s++ {
		b := bins[s]
		if len(b) == 0 {
			continue
		}
		slices.Sort(b)
		x := float64(s) + 0.5
		p50 = append(p50, plotter.XY{X: x, Y: ms(quantile(b, 0.5))})
		p99 = append(p99, plotter.XY{X: x, Y: ms(quantile(b, 0.99))})
		pmax = append(pmax, plotter.XY{X: x, Y: ms(b[len(b)-1])})
	}
	return p50, p99, pmax
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
