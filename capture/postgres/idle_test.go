package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestIdleDatabaseHeartbeat keeps an unrelated database busy for a minute
// while the captured table is idle. With heartbeats on, the slot's
// confirmed_flush_lsn must keep up with the server's WAL and restart_lsn
// must move on, so the idle slot does not hold WAL back. Lag figures are
// logged every 5 s.
func TestIdleDatabaseHeartbeat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a minute")
	}
	t.Parallel()
	const busyFor = 60 * time.Second
	pg := stack.StartPostgres(t)
	pg.CreateDatabase(t, "app")
	pg.CreateDatabase(t, "other")
	pg.Exec(t, "app", `CREATE TABLE quiet (id int PRIMARY KEY)`)
	pg.Exec(t, "other", `CREATE TABLE noise (id bigserial PRIMARY KEY, pad text)`)

	sink := newMemSink()
	cfg := baseConfig(pg, "app", "quiet")
	cfg.SnapshotMode = SnapshotNever
	cfg.HeartbeatInterval = time.Second
	cfg.StatusInterval = 200 * time.Millisecond
	r := startSource(t, cfg, sink)
	waitForSlotActive(t, pg, "chron")
	restart0 := slotLSN(t, pg, "chron", "restart_lsn")

	ctx, cancel := context.WithTimeout(context.Background(), busyFor)
	defer cancel()
	noise := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(ctx, pg.DatabaseURL("other"))
		if err != nil {
			noise <- err
			return
		}
		defer conn.Close(context.Background())
		for ctx.Err() == nil {
			if _, err := conn.Exec(ctx, "INSERT INTO noise (pad) SELECT repeat('n', 200) FROM generate_series(1, 50)"); err != nil && ctx.Err() == nil {
				noise <- err
				return
			}
			time.Sleep(10 * time.Millisecond) // throttles the workload (about 100 MiB of WAL a minute)
		}
		noise <- nil
	}()
	var maxConfirmedLag, maxRestartLag, start contract.LSN
	start = currentLSN(t, pg)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			// Slot first, WAL second: the lag is never under-stated.
			conf, rst := slotLSN(t, pg, "chron", "confirmed_flush_lsn"), slotLSN(t, pg, "chron", "restart_lsn")
			wal := currentLSN(t, pg)
			t.Logf("WAL +%d KiB since start; confirmed_flush lag %d KiB, restart_lsn lag %d KiB", (wal-start)/1024, (wal-conf)/1024, (wal-rst)/1024)
			maxConfirmedLag = max(maxConfirmedLag, wal-conf)
			maxRestartLag = max(maxRestartLag, wal-rst)
		}
	}
	if err := <-noise; err != nil {
		t.Fatal(err)
	}
	end := currentLSN(t, pg)
	waitFor(t, 15*time.Second, "confirmed_flush_lsn to reach the WAL end", func() bool {
		return slotLSN(t, pg, "chron", "confirmed_flush_lsn") >= end
	})
	hb := testutilCounter(r.src.m.heartbeats)
	t.Logf("figure: idle database heartbeat: busy %s: %d MiB of WAL, max confirmed_flush lag %d KiB, max restart_lsn lag %d KiB, %v heartbeats",
		busyFor, (end-start)>>20, maxConfirmedLag/1024, maxRestartLag/1024, hb)
	if restart := slotLSN(t, pg, "chron", "restart_lsn"); restart <= restart0 {
		t.Errorf("restart_lsn did not move: %s", restart)
	}
	// Bounded: confirmed_flush_lsn trails by at most the WAL of 5 s (status
	// and heartbeat intervals are 0.2 s and 1 s); restart_lsn can only move
	// at xl_running_xacts records, which the bgwriter logs every 15 s, so it
	// may trail by two of those intervals: the WAL of 35 s, not a growing
	// backlog.
	perSecond := (end - start) / contract.LSN(busyFor/time.Second)
	if bound := max(5*perSecond, 1<<20); maxConfirmedLag > bound {
		t.Errorf("confirmed_flush_lsn lag reached %d KiB; bound %d KiB", maxConfirmedLag/1024, bound/1024)
	}
	if bound := max(35*perSecond, 16<<20); maxRestartLag > bound {
		t.Errorf("restart_lsn lag reached %d KiB; bound %d KiB", maxRestartLag/1024, bound/1024)
	}
	if hb == 0 {
		t.Error("no heartbeat was emitted while the captured table was idle")
	}
	if n := len(sink.changes()); n != 0 {
		t.Errorf("the sink received %d changes; heartbeats must not reach it", n)
	}
}
