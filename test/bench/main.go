// Command bench measures Chronicler against the physical limit Postgres sets:
// the rate at which pg_recvlogical drains the same WAL through pgoutput, from
// a second slot created at the same point, in the same run. Every figure is
// reported as a ratio to that baseline.
//
//	go run ./test/bench -scenario capture -json
//
// Scenarios (more arrive with the store and publish issues):
//
//	capture     capture + mapping into a null sink (scenario 1)
//	store-0ms   capture → rules → KurrentDB-compatible server in memory (scenario 2)
//	store-2ms   the same with 2 ms injected latency per append
//	all         all of the above
//
// Workload: pgbench's TPC-B-like script on a throwaway Postgres of the test
// stack (`pgbench -i -I dtGvp -s SCALE`, then `pgbench -T DURATION -c
// CLIENTS`). Three slots exist before the workload starts, so all drain
// exactly the same WAL: pg_recvlogical drains one before and one after the
// scenario (the baseline is their mean), the scenario drains the third. A
// logical message written after the workload marks the end for all.
//
// Output: one JSON object per scenario on stdout (-json) or a table, and a
// Markdown report in -out. CPU seconds and peak RSS are this process's own
// (getrusage and /proc/self/status VmHWM): capture runs in-process here, and
// in the store scenarios so does the KurrentDB-compatible server; peak RSS is
// the process's peak so far, so it only grows from one scenario to the next.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"time"
)

type options struct {
	scenario   string
	scale      int
	duration   time.Duration
	clients    int
	jsonOut    bool
	outDir     string
	rules      string
	cpuprofile string
	memprofile string
	verbose    bool
}

// Result is one scenario's figures.
type Result struct {
	Scenario           string  `json:"scenario"`
	Workload           string  `json:"workload"`
	Transactions       int64   `json:"transactions"`
	Changes            int64   `json:"changes"`
	WALBytes           int64   `json:"wal_bytes"`
	BaselineSeconds    float64 `json:"baseline_seconds"` // mean of the drains before and after
	BaselineBefore     float64 `json:"baseline_before_seconds"`
	BaselineAfter      float64 `json:"baseline_after_seconds"`
	BaselineChangesSec float64 `json:"baseline_changes_per_sec"`
	Seconds            float64 `json:"seconds"`
	ChangesPerSec      float64 `json:"changes_per_sec"`
	Ratio              float64 `json:"ratio_to_baseline"`
	CPUSecPerMChanges  float64 `json:"cpu_seconds_per_million_changes"`
	PeakRSSMiB         float64 `json:"peak_rss_mib"`
	Events             int64   `json:"events"`
	Goal               float64 `json:"goal_ratio"`
}

func main() {
	var o options
	flag.StringVar(&o.scenario, "scenario", "all", "scenario to run: capture, store-0ms, store-2ms, or all")
	flag.IntVar(&o.scale, "scale", 5, "pgbench scale factor (100,000 accounts each)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "pgbench run time")
	flag.IntVar(&o.clients, "clients", 4, "pgbench clients")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON object per scenario on stdout")
	flag.StringVar(&o.outDir, "out", "test/bench/results", "directory for the Markdown report")
	flag.StringVar(&o.rules, "rules", "deploy/examples/rules/pgbench", "capture rules for pgbench's tables")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each scenario to this file prefix")
	flag.StringVar(&o.memprofile, "memprofile", "", "write a heap profile after each scenario to this file prefix")
	flag.BoolVar(&o.verbose, "v", false, "log progress")
	flag.Parse()

	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results, err := run(ctx, o, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	for _, r := range results {
		if o.jsonOut {
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
		} else {
			fmt.Printf("%-8s %9d changes  baseline %8.0f changes/s  chronicler %8.0f changes/s  ratio %.2f (goal %.2f)  %.1f CPU s/M changes  peak RSS %.0f MiB\n",
				r.Scenario, r.Changes, r.BaselineChangesSec, r.ChangesPerSec, r.Ratio, r.Goal, r.CPUSecPerMChanges, r.PeakRSSMiB)
		}
	}
	if err := writeReport(o, results); err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing the report:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log *slog.Logger) ([]Result, error) {
	scenarios := []string{o.scenario}
	if o.scenario == "all" {
		scenarios = []string{"capture", "store-0ms", "store-2ms"}
	}
	for _, s := range scenarios {
		if _, ok := scenarioFuncs[s]; !ok {
			return nil, fmt.Errorf("unknown scenario %q (have: capture, store-0ms, store-2ms, all; the Kafka scenarios are not built yet)", s)
		}
	}
	env, err := prepare(ctx, o, log)
	if err != nil {
		return nil, err
	}
	defer env.close()
	// The baseline is drained once before and once after the scenarios, from
	// slots created at the same point, and the mean is used, so no scenario
	// gains from running first or last.
	before, err := baseline(ctx, env, baselineSlot)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, s := range scenarios {
		stopProfile, err := startProfile(o.cpuprofile, s)
		if err != nil {
			return nil, err
		}
		r, err := scenarioFuncs[s](ctx, env, o, log)
		stopProfile()
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s, err)
		}
		if err := writeHeap(o.memprofile, s); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	after, err := baseline(ctx, env, afterSlot)
	if err != nil {
		return nil, err
	}
	mean := (before + after) / 2
	for i := range out {
		r := &out[i]
		r.Workload, r.Transactions, r.WALBytes = env.workload, env.txs, int64(env.end-env.start)
		r.BaselineSeconds, r.BaselineBefore, r.BaselineAfter = mean.Seconds(), before.Seconds(), after.Seconds()
		r.BaselineChangesSec = float64(r.Changes) / mean.Seconds()
		r.Ratio = r.ChangesPerSec / r.BaselineChangesSec
	}
	return out, nil
}

var scenarioFuncs = map[string]func(context.Context, *env, options, *slog.Logger) (Result, error){
	"capture": runCapture,
	"store-0ms": func(ctx context.Context, e *env, o options, log *slog.Logger) (Result, error) {
		return runStore(ctx, e, o, log, 0)
	},
	"store-2ms": func(ctx context.Context, e *env, o options, log *slog.Logger) (Result, error) {
		return runStore(ctx, e, o, log, 2*time.Millisecond)
	},
}

func startProfile(prefix, scenario string) (func(), error) {
	if prefix == "" {
		return func() {}, nil
	}
	f, err := os.Create(prefix + "." + scenario + ".cpu.prof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func writeHeap(prefix, scenario string) error {
	if prefix == "" {
		return nil
	}
	f, err := os.Create(prefix + "." + scenario + ".mem.prof")
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}

func writeReport(o options, results []Result) error {
	if o.outDir == "" {
		return nil
	}
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(o.outDir, "report.md"))
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "# Chronicler benchmark\n\n`go run ./test/bench -scenario %s -scale %d -duration %s -clients %d`, %s\n\n",
		o.scenario, o.scale, o.duration, o.clients, time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintln(f, "| scenario | changes | baseline changes/s | changes/s | ratio | goal | CPU s / M changes | peak RSS MiB |")
	fmt.Fprintln(f, "|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		fmt.Fprintf(f, "| %s | %d | %.0f | %.0f | %.2f | %.2f | %.1f | %.0f |\n",
			r.Scenario, r.Changes, r.BaselineChangesSec, r.ChangesPerSec, r.Ratio, r.Goal, r.CPUSecPerMChanges, r.PeakRSSMiB)
	}
	return nil
}
