package main

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestMain lets the test binary be a bench worker too: the smoke test's
// scenarios re-execute it, as the bench command re-executes itself.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(workerEnv); cfg != "" {
		workerMain(cfg)
		return
	}
	os.Exit(m.Run())
}

// TestBenchSmoke runs every scenario at a tiny scale so the harness cannot
// rot (./test/run.sh runs it with the suite): pgbench at scale 1, 500 transactions
// through capture, capture → store, the full pipeline to Kafka (the shared
// broker of CHRONICLER_TEST_KAFKA_BROKERS, else one of its own) and the
// publisher alone, a 2 s steady-rate run, and the wide-row workload's
// unchanged-TOAST updates through capture and the full pipeline, each
// between the two references' drains (the limit's count every row change
// too). It checks counts, never speed: every pgbench transaction is 3
// updates and 1 insert, each mapped to exactly one event and stored once,
// and one integration event per transaction is read exactly once by a
// read_committed consumer (the scenarios themselves fail on any other
// count); and every figure the scenario has: the references', each
// process's CPU (the broker's too, found by its listening socket) and
// their sum.
func TestBenchSmoke(t *testing.T) {
	k := stack.StartKafka(t)
	o := defaultOptions()
	o.scenario, o.workload = "capture,store-0ms,full,publish,latency", "pgbench,wide"
	o.scale, o.txPerClient, o.clients = 1, 500, 1
	o.wideRows, o.rate, o.latencyDuration, o.latencyWarmup = 1000, 50, 2*time.Second, time.Second
	o.brokers, o.outDir = strings.Join(k.Brokers, ","), t.TempDir()
	began := time.Now()
	results, err := run(context.Background(), o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, w := range []string{"pgbench", "wide"} {
		for _, s := range []string{"capture", "store-0ms", "full", "publish"} {
			want[w+"/"+s] = true
		}
	}
	want["pgbench-rate/latency"] = true
	for _, r := range results {
		key := r.Workload + "/" + r.Scenario
		if !want[key] {
			t.Fatalf("unexpected or repeated result %s", key)
		}
		delete(want, key)
		perTx := int64(4)
		if r.Workload == "wide" {
			// 1,000 rows inserted, then updated: one event and one
			// integration event per change; 500 updates carry the TOASTed
			// body as unchanged-toast.
			if r.Changes != 2000 || r.Events != 2000 || r.Records != 2000 || r.Unchanged != 500 {
				t.Fatalf("%s: %d changes, %d events, %d integration events, %d unchanged-toast; want 2000, 2000, 2000, 500", key, r.Changes, r.Events, r.Records, r.Unchanged)
			}
		} else if r.Transactions == 0 || r.Changes != perTx*r.Transactions || r.Events != perTx*r.Transactions || r.Records != r.Transactions {
			t.Fatalf("%s: transactions %d, changes %d, events %d, integration events %d; want 4 changes, 4 events and 1 integration event per transaction",
				key, r.Transactions, r.Changes, r.Events, r.Records)
		}
		if r.Seconds <= 0 || r.PeakRSSMiB <= 0 || r.CPUSecPerMChanges <= 0 {
			t.Fatalf("%s: incomplete figures: %+v", key, r)
		}
		if r.Scenario == "latency" {
			if r.LatencyP50Ms <= 0 || r.LatencyMaxMs < r.LatencyP99Ms || r.LatencyP99Ms < r.LatencyP50Ms || len(r.Goals) != 1 ||
				r.WarmupP50Ms <= 0 || r.WarmupP99Ms < r.WarmupP50Ms {
				t.Fatalf("%s: latency figures out of order: %+v", key, r)
			}
		} else if r.LimitSeconds <= 0 || r.LimitChangesSec <= 0 || r.RatioToLimit <= 0 || r.RecvlogicalSeconds <= 0 || r.RatioToRecvlogical <= 0 || r.WALBytes <= 0 ||
			math.Abs(r.RatioToLimit-r.ChangesPerSec/r.LimitChangesSec) > 1e-9 || math.Abs(r.LimitChangesSec*r.LimitSeconds-float64(r.Changes)) > 1e-6*float64(r.Changes) {
			t.Fatalf("%s: incomplete or inconsistent reference figures: %+v", key, r)
		}
		checkMachineCPU(t, key, &r)
		t.Logf("figure: bench smoke (not a measurement): %s", r.line())
	}
	if len(want) > 0 {
		t.Fatalf("missing results: %v", want)
	}
	if err := writeOutputs(o, results, time.Since(began)); err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join(o.outDir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Machine CPU", "## Where the time goes", "**pgbench store-0ms**", "**wide full**", "and the Kafka broker", "ratio to the limit"} {
		if !strings.Contains(string(report), want) {
			t.Fatalf("report.md lacks %q", want)
		}
	}
	for _, f := range []string{"report.md", "results.json", "throughput-pgbench.png", "throughput-wide.png", "latency-time.png", "latency-distribution.png"} {
		if st, err := os.Stat(filepath.Join(o.outDir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("output %s: %v (size %v)", f, err, st)
		}
	}
}

// checkMachineCPU asserts that r carries the CPU of every process its
// scenario has, each positive (never how much): the server child (all but
// capture), the walsender of its slot (all but publish), the Kafka broker
// (full, publish, latency), their sum with the worker's and its ceiling,
// the references': the limit's backend and pg_recvlogical with its
// walsender (all but the latency run, which has no references), and the
// machine as a whole (/proc/stat).
//
// The one figure allowed to be unknown is the walsender of a pg_recvlogical
// drain: the smoke test's drains last a few ms, and on a loaded machine its
// walsender can come and go between two looks at the slot; it must then be
// named, never a zero.
func checkMachineCPU(t *testing.T, key string, r *Result) {
	t.Helper()
	recvUnknown := 0
	for _, u := range r.CPUUnknown {
		if !strings.HasPrefix(u, "pg_recvlogical drain ") {
			t.Fatalf("%s: CPU unknown: %v", key, r.CPUUnknown)
		}
		recvUnknown++
		t.Logf("%s: %s", key, u)
	}
	pos := func(what string, v *float64, want bool) {
		t.Helper()
		switch {
		case want && (v == nil || *v <= 0):
			t.Fatalf("%s: %s CPU s per M changes %s; want > 0", key, what, cpuFig(v))
		case !want && v != nil:
			t.Fatalf("%s: %s CPU s per M changes %s; the scenario has no such process", key, what, cpuFig(v))
		}
	}
	pos("server", r.ServerCPUSecPerM, usesServer(r.Scenario))
	pos("walsender", r.WalsenderCPUSecPerM, usesWalsender(r.Scenario))
	pos("broker", r.BrokerCPUSecPerM, usesBroker(r.Scenario))
	pos("machine", r.MachineCPUSecPerM, true)
	pos("ceiling", r.MachineCeiling, true)
	sum := r.CPUSecPerMChanges
	for _, v := range []*float64{r.ServerCPUSecPerM, r.WalsenderCPUSecPerM, r.BrokerCPUSecPerM} {
		if v != nil {
			sum += *v
		}
	}
	if math.Abs(sum-*r.MachineCPUSecPerM) > 1e-9*sum || r.MachineCPUs < 1 ||
		math.Abs(*r.MachineCeiling-float64(r.MachineCPUs)*1e6/sum) > 1e-6**r.MachineCeiling {
		t.Fatalf("%s: machine %.3f CPU s per M changes, ceiling %.1f on %d CPUs; want the sum of its parts %.3f and CPUs × 1e6 / it",
			key, *r.MachineCPUSecPerM, *r.MachineCeiling, r.MachineCPUs, sum)
	}
	// The machine as a whole, every figure read (that it counts what runs
	// on it: TestHostTimesCountThisProcess).
	if r.HostBusyCPUs == nil || *r.HostBusyCPUs <= 0 || r.HostOutsideCPUs == nil || r.HostStealCPUs == nil || *r.HostStealCPUs < 0 {
		t.Fatalf("%s: the machine busy %s CPUs, outside %s, steal %s; want busy > 0 and every figure read",
			key, cpusFig(r.HostBusyCPUs), cpusFig(r.HostOutsideCPUs), cpusFig(r.HostStealCPUs))
	}
	refs := r.Scenario != "latency"
	pos("limit backend", r.LimitCPUSecPerM, refs)
	pos("pg_recvlogical client", r.RecvlogicalClientCPUSecPerM, refs)
	if refs && recvUnknown == 2 {
		pos("pg_recvlogical", r.RecvlogicalCPUSecPerM, false)
		pos("pg_recvlogical walsender", r.RecvlogicalWalsenderCPUSecPerM, false)
		return
	}
	pos("pg_recvlogical", r.RecvlogicalCPUSecPerM, refs)
	pos("pg_recvlogical walsender", r.RecvlogicalWalsenderCPUSecPerM, refs)
}
