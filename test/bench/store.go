package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
)

// runStore is scenario 2: capture → rules → appender → the
// KurrentDB-compatible server (in memory, in-process) with latency injected
// per append, until the end marker's transaction is durable in the store.
func runStore(ctx context.Context, e *env, o options, log *slog.Logger, latency time.Duration) (Result, error) {
	slot := store0Slot
	if latency > 0 {
		slot = store2Slot
	}
	srv, err := kurrentdb.Start(kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatency: latency}})
	if err != nil {
		return Result{}, err
	}
	defer srv.Close()
	reg := prometheus.NewRegistry()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu0 := cpuSeconds()
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		errc <- capture.Run(runCtx, capture.Options{
			Postgres: postgres.Config{URL: e.url, Slot: slot, Publication: publication, Tables: benchTables,
				SnapshotMode: postgres.SnapshotNever, HeartbeatInterval: -1},
			StoreURL:   srv.URL(),
			RulePaths:  []string{o.rules},
			Registerer: reg,
			Logger:     log,
		})
	}()
	// Durable at or past the end marker's own LSN means the marker's
	// transaction (which commits after it) and every one before it are stored.
	for gauge(reg, "chronicler_pipeline_durable_lsn_bytes") < float64(e.marker) {
		select {
		case err := <-errc:
			return Result{}, fmt.Errorf("capture stopped before the end marker was durable: %v", err)
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling the durable position
		}
	}
	elapsed := time.Since(start)
	cpu := cpuSeconds() - cpu0
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return Result{}, err
	}
	changes := int64(gauge(reg, "chronicler_pipeline_changes_total"))
	name := "store-0ms"
	if latency > 0 {
		name = "store-2ms"
	}
	goal := 0.7
	if latency > 0 {
		goal = 0 // the goal for 2 ms is relative: within 2x of store-0ms
	}
	return Result{
		Scenario:          name,
		Changes:           changes,
		Seconds:           elapsed.Seconds(),
		ChangesPerSec:     float64(changes) / elapsed.Seconds(),
		CPUSecPerMChanges: cpu / float64(changes) * 1e6,
		PeakRSSMiB:        peakRSSMiB(),
		Events:            int64(gauge(reg, "chronicler_pipeline_events_stored_total")),
		Goal:              goal,
	}, nil
}

// gauge sums a metric family's values over its labels.
func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}
