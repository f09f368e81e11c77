package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestResilienceTerminateAndRestart runs 50,000 single-row transactions
// from 4 writers while the walsender is terminated three times
// (pg_terminate_backend) and Postgres is restarted once (fast shutdown).
// The sink de-duplicates by commit LSN and acks asynchronously, so every
// reconnect re-delivers a window. At the end the de-duplicated stream holds
// every row of the table exactly once, and every re-delivered transaction
// was identical to its first delivery (Tx, ordinals, values).
func TestResilienceTerminateAndRestart(t *testing.T) {
	t.Parallel()
	const total, writers = 50000, 4
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE r (id bigint PRIMARY KEY, w int NOT NULL)`)

	sink := newMemSink()
	sink.asyncAck = true
	cfg := baseConfig(pg, "postgres", "r")
	cfg.SnapshotMode = SnapshotNever
	r := startSource(t, cfg, sink)
	waitForSlotActive(t, pg, "chron")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := retryingWriter(ctx, pg.DatabaseURL("postgres"), w, writers, total/writers, &done); err != nil {
				errs <- err
			}
		}()
	}

	terminations := 0
	for _, at := range []int64{8000, 16000, 24000} {
		waitFor(t, 120*time.Second, fmt.Sprintf("%d transactions", at), func() bool { return done.Load() >= at })
		if terminateWalsender(t, pg, "chron") {
			terminations++
		}
	}
	waitFor(t, 120*time.Second, "32000 transactions", func() bool { return done.Load() >= 32000 })
	pg.Stop()
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	ids := map[int64]int{}
	waitFor(t, 120*time.Second, "every row in the stream", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		n := 0
		for _, tx := range sink.txs {
			n += len(tx.changes)
		}
		return n >= total
	})
	for _, c := range sink.changes() {
		if c.Op != contract.OpInsert || c.Ordinal != 0 {
			t.Fatalf("unexpected change %s ordinal %d", c.Op, c.Ordinal)
		}
		ids[c.New["id"].(int64)]++
	}
	var rows int64
	if err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT count(*) FROM r").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != total || len(ids) != total {
		t.Fatalf("table has %d rows, stream %d distinct ids; want %d", rows, len(ids), total)
	}
	for id, n := range ids {
		if n != 1 || id < 0 || id >= total {
			t.Fatalf("id %d seen %d times after de-duplication", id, n)
		}
	}
	sink.mu.Lock()
	replays, mismatch, aborts := sink.replays, sink.mismatch, sink.aborts
	sink.mu.Unlock()
	if mismatch != nil {
		t.Fatal(mismatch)
	}
	t.Logf("figure: resilience: %d transactions, %d walsender terminations, 1 restart, %d re-delivered transactions (all identical), %d aborted mid-transaction, %v reconnects",
		total, terminations, replays, aborts, testutilCounter(r.src.m.reconnects))
	if terminations < 3 {
		t.Errorf("only %d walsender terminations took effect", terminations)
	}
}

// retryingWriter inserts ids w, w+step, ... (count of them), one
// transaction each, reconnecting through server restarts. ON CONFLICT DO
// NOTHING makes a retry of a commit whose reply was lost a no-op (no row
// change, so no captured transaction).
func retryingWriter(ctx context.Context, url string, w, step, count int, done *atomic.Int64) error {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for k := 0; k < count; {
		if time.Now().After(deadline) {
			return fmt.Errorf("writer %d stuck at %d", w, k)
		}
		if conn == nil {
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				time.Sleep(20 * time.Millisecond) // retry interval while the server restarts
				continue
			}
			conn = c
		}
		if _, err := conn.Exec(ctx, "INSERT INTO r VALUES ($1, $2) ON CONFLICT DO NOTHING", int64(w+k*step), w); err != nil {
			conn.Close(context.Background())
			conn = nil
			continue
		}
		k++
		done.Add(1)
	}
	return nil
}

// terminateWalsender terminates the walsender streaming the slot, if any.
func terminateWalsender(t testing.TB, pg *stack.Postgres, slot string) bool {
	t.Helper()
	var ok bool
	err := pg.Connect(t, "postgres").QueryRow(t.Context(),
		"SELECT coalesce(bool_or(pg_terminate_backend(active_pid)), false) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", slot).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}
