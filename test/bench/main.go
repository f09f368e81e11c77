package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chronicler-dev/chronicler/test/stack"
)

//go:embed rules
var rulesFS embed.FS

type options struct {
	scenario        string
	workload        string
	scale           int
	duration        time.Duration
	clients         int
	bulkRows        int
	wideRows        int
	rate            int
	latencyDuration time.Duration
	latencyWarmup   time.Duration
	batchInterval   time.Duration
	maxPending      int
	noBatchAppend   bool
	txPerClient     int // pgbench -t instead of -T when > 0 (the smoke test's small, fixed workload)
	brokers         string
	jsonOut         bool
	outDir          string
	cpuprofile      string
	memprofile      string
	verbose         bool
	autogroup       string // off or keep (setAutogroup)
}

func defaultOptions() options {
	return options{
		scenario: "all", workload: "all", scale: 5, duration: 10 * time.Second, clients: 4,
		bulkRows: 1000000, wideRows: 20000, rate: 1000, latencyDuration: 30 * time.Second, latencyWarmup: 20 * time.Second,
		brokers: os.Getenv("CHRONICLER_TEST_KAFKA_BROKERS"), outDir: "test/bench/results", autogroup: "off",
	}
}

var (
	allScenarios = []string{"capture", "store-0ms", "store-2ms", "full", "publish", "latency"}
	allWorkloads = []string{"pgbench", "bulk", "wide"}
)

func main() {
	if cfg := os.Getenv(workerEnv); cfg != "" {
		workerMain(cfg)
		return
	}
	o := defaultOptions()
	flag.StringVar(&o.scenario, "scenario", o.scenario, "scenarios, comma-separated: "+strings.Join(allScenarios, ", ")+", or all")
	flag.StringVar(&o.workload, "workload", o.workload, "workloads, comma-separated: "+strings.Join(allWorkloads, ", ")+", or all (the latency run always uses pgbench)")
	flag.IntVar(&o.scale, "scale", o.scale, "pgbench scale factor (100,000 accounts each)")
	flag.DurationVar(&o.duration, "duration", o.duration, "pgbench run time (whole seconds)")
	flag.IntVar(&o.clients, "clients", o.clients, "pgbench clients")
	flag.IntVar(&o.bulkRows, "bulk-rows", o.bulkRows, "rows the bulk workload's one transaction inserts")
	flag.IntVar(&o.wideRows, "wide-rows", o.wideRows, "rows the wide workload inserts and then updates (even: 1,000 or more)")
	flag.IntVar(&o.rate, "rate", o.rate, "transactions per second of the steady-rate latency run")
	flag.DurationVar(&o.latencyDuration, "latency-duration", o.latencyDuration, "length of the steady-rate latency run (whole seconds)")
	flag.DurationVar(&o.latencyWarmup, "latency-warmup", o.latencyWarmup, "the first part of the steady-rate run, not counted in its figures but reported apart (whole seconds; 0: none)")
	flag.DurationVar(&o.batchInterval, "batch-interval", 0, "the publisher's BatchInterval (0: its default, 100ms)")
	flag.IntVar(&o.maxPending, "max-pending-bytes", 0, "the appender's MaxPendingBytes (0: its default, 8 MiB)")
	flag.BoolVar(&o.noBatchAppend, "no-batch-append", false, "append with one AppendToStream call per stream instead of BatchAppend (store.batch_append: false)")
	flag.StringVar(&o.brokers, "kafka-brokers", o.brokers, "Kafka brokers (host:port, comma-separated); default $CHRONICLER_TEST_KAFKA_BROKERS, else a broker of the test stack is started")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON object per scenario and workload on stdout")
	flag.StringVar(&o.outDir, "out", o.outDir, "directory for report.md, results.json and the PNG plots (\"\": none)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write each worker's CPU profile to PREFIX.<workload>.<scenario>.cpu.prof")
	flag.StringVar(&o.memprofile, "memprofile", "", "write each worker's heap profile to PREFIX.<workload>.<scenario>.mem.prof (at exit) and .mem.prof.peak (at the heap's peak)")
	flag.BoolVar(&o.verbose, "v", false, "log progress")
	flag.StringVar(&o.autogroup, "autogroup", o.autogroup, "the kernel's autogroup scheduling during the run: off (turned off if on and this runs as root, and back on at the end) or keep")
	flag.Parse()

	log := newLogger(o.verbose)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	if _, _, err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	state, restore := setAutogroup(autogroupPath, o.autogroup)
	results, err := run(ctx, o, log)
	restore()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	for i := range results {
		results[i].Autogroup = state
	}
	if !o.jsonOut {
		fmt.Printf("the kernel's autogroup scheduling: %s\n", state)
	}
	for _, r := range results {
		if o.jsonOut {
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
		} else {
			fmt.Println(r.line())
		}
	}
	if err := writeOutputs(o, results, time.Since(began)); err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing the report:", err)
		os.Exit(1)
	}
}

// newLogger logs to stderr: warnings and errors, and progress with verbose
// (the bench's -v, passed on to its workers).
func newLogger(verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// parseList expands a comma-separated flag value against the known names.
func parseList(flagName, v string, all []string) ([]string, error) {
	if v == "all" {
		return all, nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(all, s) {
			return nil, fmt.Errorf("-%s %q: unknown %q; want %s or all", flagName, v, s, strings.Join(all, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}

func (o options) validate() ([]string, []string, error) {
	var errs []error
	scenarios, err := parseList("scenario", o.scenario, allScenarios)
	errs = append(errs, err)
	workloads, err := parseList("workload", o.workload, allWorkloads)
	errs = append(errs, err)
	if o.scale < 1 || o.clients < 1 || o.rate < 1 || o.bulkRows < 1 {
		errs = append(errs, fmt.Errorf("-scale %d, -clients %d, -rate %d, -bulk-rows %d: each must be at least 1", o.scale, o.clients, o.rate, o.bulkRows))
	}
	if o.autogroup != "off" && o.autogroup != "keep" {
		errs = append(errs, fmt.Errorf("-autogroup %q: want off or keep", o.autogroup))
	}
	if o.wideRows < 1000 || o.wideRows%2 != 0 {
		errs = append(errs, fmt.Errorf("-wide-rows %d: want an even number, at least 1000", o.wideRows))
	}
	if o.duration < time.Second || o.latencyDuration < time.Second {
		errs = append(errs, fmt.Errorf("-duration %s, -latency-duration %s: each at least 1s", o.duration, o.latencyDuration))
	}
	if o.latencyWarmup < 0 {
		errs = append(errs, fmt.Errorf("-latency-warmup %s: want 0 (none) or more", o.latencyWarmup))
	}
	return scenarios, workloads, errors.Join(errs...)
}

func run(ctx context.Context, o options, log *slog.Logger) ([]Result, error) {
	scenarios, workloads, err := o.validate()
	if err != nil {
		return nil, err
	}
	has := func(s string) bool { return slices.Contains(scenarios, s) }
	nonce := make([]byte, 4)
	_, _ = rand.Read(nonce)
	b := &bench{o: o, log: log, nonce: hex.EncodeToString(nonce)}

	tmp, err := os.MkdirTemp("", "chronicler-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	sub, _ := fs.Sub(rulesFS, "rules")
	b.rules = filepath.Join(tmp, "rules")
	if err := os.CopyFS(b.rules, sub); err != nil {
		return nil, fmt.Errorf("writing the rule files: %w", err)
	}

	logf := func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }
	pg, err := stack.NewPostgres(stack.PostgresConfig{
		Settings: map[string]string{"max_wal_size": "'8GB'", "checkpoint_timeout": "'30min'", "logical_decoding_work_mem": "'64MB'"},
		Logf:     logf,
	})
	if err != nil {
		return nil, err
	}
	defer pg.Close()
	b.pg = pg
	if has("full") || has("publish") || has("latency") {
		if o.brokers != "" {
			b.brokers = strings.Split(o.brokers, ",")
		} else {
			log.Info("starting a Kafka broker")
			kb, err := stack.NewBroker(logf)
			if err != nil {
				return nil, fmt.Errorf("starting a Kafka broker (or pass -kafka-brokers): %w", err)
			}
			defer kb.Close()
			b.brokers = []string{kb.Addr}
		}
		// The broker's CPU is read from /proc like every other process's:
		// found once, by its listening socket; a broker elsewhere is unknown.
		b.kafka.procs, b.kafka.err = listeners(b.brokers)
		if b.kafka.err != nil {
			log.Warn("the Kafka broker's CPU will be unknown", "err", b.kafka.err)
		}
	}

	var out []Result
	pgbenchReady := false
	for _, name := range workloads {
		rs, err := b.runWorkload(ctx, name, scenarios, has)
		if err != nil {
			return nil, fmt.Errorf("workload %s: %w", name, err)
		}
		pgbenchReady = pgbenchReady || (name == "pgbench" && len(rs) > 0)
		out = append(out, rs...)
	}
	if has("latency") {
		log.Info("steady-rate latency run", "rate", o.rate, "duration", o.latencyDuration)
		r, err := b.runLatency(ctx, pgbenchReady)
		if err != nil {
			return nil, fmt.Errorf("latency run: %w", err)
		}
		r.evaluate(nil)
		out = append(out, r)
	}
	return out, nil
}

// runWorkload runs the workload once and every throughput scenario on its
// WAL, between the reference drains: the limit (a backend decoding the
// slot) first and last, pg_recvlogical inside them.
func (b *bench) runWorkload(ctx context.Context, name string, scenarios []string, has func(string) bool) ([]Result, error) {
	// A slot per reader of the workload's WAL: every reference drain and
	// every scenario but publish, which reads the store.
	drains := []string{"limit-before", "recvlogical-before", "recvlogical-after", "limit-after"}
	var todo []string
	for _, s := range scenarios {
		if s != "latency" {
			todo = append(todo, s)
		}
		if s != "latency" && s != "publish" {
			drains = append(drains, s)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	if has("publish") && !has("full") && !has("store-0ms") {
		drains = append(drains, "fill")
	}
	w, err := prepareWorkload(ctx, b.pg, name, b.o, b.rules, drains, b.log)
	if err != nil {
		return nil, err
	}
	defer w.dropSlots(context.Background(), b.pg.URL())
	b.log.Info("workload done", "workload", w.desc)
	// Each reference is drained once before and once after the scenarios,
	// from slots created at the same point, and the mean is used, so no
	// scenario gains from running first or last.
	limBefore, err := limitDrain(ctx, b.pg, w, w.slot("limit-before"))
	if err != nil {
		return nil, err
	}
	limBefore.log(b.log, w, "limit before")
	recBefore, err := recvlogicalDrain(ctx, b.pg, w, w.slot("recvlogical-before"))
	if err != nil {
		return nil, err
	}
	recBefore.log(b.log, w, "pg_recvlogical before")
	var (
		out    []Result
		filled *child // a server holding the workload's events, for publish
	)
	defer func() {
		if filled != nil {
			filled.stop()
		}
	}()
	keep := func(srv *child) {
		if filled != nil {
			filled.stop()
		}
		filled = srv
	}
	for _, s := range todo {
		b.log.Info("scenario", "workload", name, "scenario", s)
		var (
			r   Result
			err error
		)
		switch s {
		case "capture":
			r, err = b.runCapture(ctx, w)
		case "store-0ms", "store-2ms", "full":
			var srv *child
			r, srv, err = b.runOnServer(ctx, w, s)
			// Scenario 4 reads the store scenario 3 (else 2 at 0 ms) filled.
			if err == nil && (s == "full" || s == "store-0ms" && !has("full")) {
				keep(srv)
			} else if srv != nil {
				srv.stop()
			}
		case "publish":
			if filled == nil {
				_, srv, err := b.runOnServer(ctx, w, "fill")
				if err != nil {
					return nil, fmt.Errorf("filling the store for the publish scenario: %w", err)
				}
				keep(srv)
			}
			r, err = b.runPublish(ctx, w, filled)
		}
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s, err)
		}
		out = append(out, r)
	}
	recAfter, err := recvlogicalDrain(ctx, b.pg, w, w.slot("recvlogical-after"))
	if err != nil {
		return nil, err
	}
	recAfter.log(b.log, w, "pg_recvlogical after")
	limAfter, err := limitDrain(ctx, b.pg, w, w.slot("limit-after"))
	if err != nil {
		return nil, err
	}
	limAfter.log(b.log, w, "limit after")
	var store0 *Result
	for i := range out {
		r := &out[i]
		r.WorkloadDesc, r.Transactions, r.WALBytes, r.Unchanged = w.desc, w.txs, int64(w.end-w.start), w.unchanged
		r.setReferences(w.changes, [2]drain{limBefore, limAfter}, [2]drain{recBefore, recAfter})
		if r.Scenario == "store-0ms" {
			store0 = r
		}
	}
	for i := range out {
		out[i].evaluate(store0)
	}
	return out, nil
}
