package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

// snapshotOf finds snapshot id in a status report.
func snapshotOf(rep preflight.StatusReport, id string) *preflight.SnapshotStatus {
	if rep.Store == nil {
		return nil
	}
	for i := range rep.Store.Snapshots {
		if rep.Store.Snapshots[i].ID == id {
			return &rep.Store.Snapshots[i]
		}
	}
	return nil
}

// TestSnapshotCommand (issue 16): capture streams the shop (no initial
// snapshot, snapshot.max_rows_per_second 1000); `chronicler snapshot
// public.customers` asks it to read the table's 3,000 rows: `status
// --json` and the chronicler_capture_snapshot_* metrics show the running
// snapshot's table, rows done, rows estimated and rate, then done with every
// row, at most the limit over the whole snapshot; the rows' events
// carry the snapshot's id. Requests capture cannot carry out are refused
// naming the table; --cancel stops a second snapshot before its end.
func TestSnapshotCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startShop(t, false)
	s.pg.Exec(t, "postgres", `INSERT INTO customers (email, full_name, phone)
SELECT 'c' || g || '@example.com', 'Customer ' || g, '+3100' || g FROM generate_series(1, 3000) g;`)
	const limit = 1000
	cfgPath := s.configFile(t, "snap_cmd", func(y string) string {
		y = strings.Replace(y, "kafka:\n  brokers: [127.0.0.1:1]\n", "", 1)
		return y + "snapshot:\n  mode: never\n  chunk_rows: 100\n  max_rows_per_second: 1000\n"
	})
	cfg, err := config.Load(cfgPath, config.Parts{Capture: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	capCtx, stopCapture := context.WithCancel(ctx)
	capDone := make(chan error, 1)
	go func() { capDone <- capture.Run(capCtx, cfg.CaptureOptions(slog.New(slog.DiscardHandler), reg)) }()
	defer func() { stopCapture(); <-capDone }()
	waitUntil(t, ctx, "capture to stream", func() bool { return metric(reg, "chronicler_capture_confirmed_lsn_bytes") > 0 })

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"snapshot", "--config", cfgPath}, 2, "name the tables"},
		{[]string{"snapshot", "public.nope", "--config", cfgPath}, 1, "public.nope is not in postgres.tables"},
		{[]string{"snapshot", "public.customers", "--where", "no_such_column > 1", "--config", cfgPath}, 1, "snapshot of public.customers with --where"},
	} {
		if code, out, errOut := runCLI(c.args...); code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q %q; want exit %d naming %q", c.args, code, out, errOut, c.code, c.want)
		}
	}

	code, out, errOut := runCLI("snapshot", "public.customers", "--id", "snap-cmd-1", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "snapshot snap-cmd-1") {
		t.Fatalf("snapshot public.customers: exit %d\n%s%s", code, out, errOut)
	}
	var running *preflight.SnapshotStatus
	sawMetrics := false
	waitUntil(t, ctx, "status and the metrics to show the snapshot running", func() bool {
		e := snapshotOf(statusJSON(t, cfgPath), "snap-cmd-1")
		if e != nil && e.State == "running" && e.RowsDone > 0 && e.RowsDone < 3000 {
			running = e
		}
		if done := metric(reg, "chronicler_capture_snapshot_rows_done"); done > 0 && done < 3000 &&
			metric(reg, "chronicler_capture_snapshot_rows_per_second") > 0 && metric(reg, "chronicler_capture_snapshot_eta_seconds") > 0 &&
			metric(reg, "chronicler_capture_snapshots_pending") == 1 {
			sawMetrics = true
		}
		return running != nil && sawMetrics
	})
	if running.Table != "public.customers" || running.RowsEstimated < 2700 || running.RowsEstimated > 3300 ||
		running.RowsPerSecond <= 0 || running.ETASeconds == nil {
		t.Errorf("running snapshot in status: %s; want table public.customers, about 3000 rows estimated, a rate, an ETA", jsonOf(running))
	}
	var done *preflight.SnapshotStatus
	waitUntil(t, ctx, "status to show the snapshot done", func() bool {
		done = snapshotOf(statusJSON(t, cfgPath), "snap-cmd-1")
		return done != nil && done.State == "done"
	})
	// 30 chunks of 100 rows, each starting 100ms after the one before: the
	// whole snapshot lasts at least 2.9s (the first chunk does not wait).
	if done.RowsDone != 3000 || done.RowsPerSecond > limit*30/29+1 {
		t.Errorf("done snapshot in status: %s; want 3000 rows at most %d rows/s over the snapshot", jsonOf(done), limit*30/29+1)
	}
	waitUntil(t, ctx, "the metrics to show the snapshot complete", func() bool {
		return metric(reg, "chronicler_capture_snapshot_rows_done") == 3000 && metric(reg, "chronicler_capture_snapshots_pending") == 0
	})
	if est, rate := metric(reg, "chronicler_capture_snapshot_rows_estimated"), metric(reg, "chronicler_capture_snapshot_rows_per_second"); est < 2700 || est > 3300 || rate != 0 {
		t.Errorf("metrics after the snapshot: rows estimated %.0f, rate %.1f; want about 3000, 0 (none is read)", est, rate)
	}
	if code, out, _ := runCLI("status", "--config", cfgPath); code != 0 || !strings.Contains(out, "snapshot snap-cmd-1") {
		t.Errorf("status text: exit %d, no snapshot line\n%s", code, out)
	}

	db := kurrentdbtest.Client(t, s.store.URL())
	ev := lastEventOf(t, ctx, db, "customer-1")
	var meta map[string]any
	if err := json.Unmarshal(ev.UserMetadata, &meta); err != nil {
		t.Fatal(err)
	}
	if ev.EventType != "CustomerRegistered" || meta["snapshot"] != "snap-cmd-1" || meta["snapshotKey"] != "[1]" || meta["op"] != "snapshot" {
		t.Errorf("customer-1's last event: %s %v; want the snapshot's CustomerRegistered with snapshot snap-cmd-1, key [1]", ev.EventType, meta)
	}

	if code, out, errOut := runCLI("snapshot", "public.customers", "--id", "snap-cmd-2", "--config", cfgPath); code != 0 {
		t.Fatalf("second snapshot: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI("snapshot", "--cancel", "snap-cmd-2", "--config", cfgPath); code != 0 || !strings.Contains(out, "cancellation of snapshot snap-cmd-2") {
		t.Fatalf("snapshot --cancel: exit %d\n%s%s", code, out, errOut)
	}
	var cancelled *preflight.SnapshotStatus
	waitUntil(t, ctx, "the second snapshot to end", func() bool {
		cancelled = snapshotOf(statusJSON(t, cfgPath), "snap-cmd-2")
		return cancelled != nil && cancelled.State != "queued" && cancelled.State != "running"
	})
	if cancelled.State != "cancelled" || cancelled.RowsDone >= 3000 {
		t.Errorf("cancelled snapshot: %s; want cancelled before its last row", jsonOf(cancelled))
	}
	second := 0
	rs, err := db.ReadStream(ctx, "customer-2999", esdb.ReadStreamOptions{From: esdb.Start{}}, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for {
		e, err := rs.Recv()
		if err != nil {
			break
		}
		var m map[string]any
		_ = json.Unmarshal(e.Event.UserMetadata, &m)
		if m["snapshot"] == "snap-cmd-2" {
			second++
		}
	}
	if second != 0 {
		t.Errorf("customer-2999 has %d events of the cancelled snapshot; want none", second)
	}
}
