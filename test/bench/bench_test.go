package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// TestBenchSmoke runs scenario 1 at a tiny scale so the harness cannot rot
// (./test/run.sh runs it with the suite). It checks counts, never speed:
// every pgbench transaction is 3 updates and 1 insert, each mapped to
// exactly one event by the pgbench rules.
func TestBenchSmoke(t *testing.T) {
	o := options{scenario: "capture", scale: 1, duration: 2 * time.Second, clients: 2,
		rules: filepath.Join("..", "..", "deploy", "examples", "rules", "pgbench"), outDir: t.TempDir()}
	results, err := run(context.Background(), o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 {
		t.Fatalf("%d results; want 1", len(results))
	}
	r := results[0]
	if r.Transactions == 0 || r.Changes != 4*r.Transactions || r.Events != r.Changes {
		t.Fatalf("transactions %d, changes %d, events %d; want 4 changes and 4 events per transaction", r.Transactions, r.Changes, r.Events)
	}
	if r.BaselineSeconds <= 0 || r.Seconds <= 0 || r.Ratio <= 0 || r.PeakRSSMiB <= 0 || r.WALBytes <= 0 {
		t.Fatalf("incomplete figures: %+v", r)
	}
	if err := writeReport(o, results); err != nil {
		t.Fatal(err)
	}
	t.Logf("figure: bench smoke (not a measurement): %d changes, ratio %.2f to pg_recvlogical", r.Changes, r.Ratio)
}
