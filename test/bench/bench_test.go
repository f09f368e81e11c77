package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// TestBenchSmoke runs every scenario at a tiny scale so the harness cannot
// rot (./test/run.sh runs it with the suite). It checks counts, never speed:
// every pgbench transaction is 3 updates and 1 insert, each mapped to
// exactly one event by the pgbench rules (and, in the store scenarios,
// stored once).
func TestBenchSmoke(t *testing.T) {
	o := options{scenario: "all", scale: 1, duration: 2 * time.Second, clients: 2,
		rules: filepath.Join("..", "..", "deploy", "examples", "rules", "pgbench"), outDir: t.TempDir()}
	results, err := run(context.Background(), o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 {
		t.Fatalf("%d results; want capture, store-0ms, store-2ms", len(results))
	}
	for _, r := range results {
		// The store scenarios count the end marker message as a change
		// (captured, matched by no rule); the capture scenario stops on it.
		changes := r.Changes
		if r.Scenario != "capture" {
			changes--
		}
		if r.Transactions == 0 || changes != 4*r.Transactions || r.Events != 4*r.Transactions {
			t.Fatalf("%s: transactions %d, changes %d, events %d; want 4 changes and 4 events per transaction", r.Scenario, r.Transactions, r.Changes, r.Events)
		}
		if r.BaselineSeconds <= 0 || r.Seconds <= 0 || r.Ratio <= 0 || r.PeakRSSMiB <= 0 || r.WALBytes <= 0 {
			t.Fatalf("%s: incomplete figures: %+v", r.Scenario, r)
		}
		t.Logf("figure: bench smoke (not a measurement): %s %d changes, ratio %.2f to pg_recvlogical", r.Scenario, r.Changes, r.Ratio)
	}
	if err := writeReport(o, results); err != nil {
		t.Fatal(err)
	}
}
