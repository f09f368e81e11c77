package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestDrainStopsTakingTransactions: after Drain the Source reports
// PhaseDraining, takes no new transaction, and the slot's confirmed
// position covers everything delivered before it but nothing after; a
// new Source then delivers what was committed during the drain (nothing
// lost).
func TestDrainStopsTakingTransactions(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE d (id int PRIMARY KEY, v text);`)
	cfg := baseConfig(pg, "postgres", "public.d")
	cfg.SnapshotMode = SnapshotNever
	sink := newMemSink()
	r := startSource(t, cfg, sink)
	waitForSlotActive(t, pg, "chron")
	waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })
	for i := 1; i <= 3; i++ {
		pg.Exec(t, "postgres", fmt.Sprintf("INSERT INTO d VALUES (%d, 'before')", i))
	}
	waitFor(t, 30*time.Second, "3 transactions", func() bool { return sink.txCount() == 3 })
	sink.mu.Lock()
	lastBefore := sink.highest
	sink.mu.Unlock()

	r.src.Drain()
	waitFor(t, 30*time.Second, "draining", func() bool { return r.src.Phase() == PhaseDraining })
	for i := 4; i <= 5; i++ {
		pg.Exec(t, "postgres", fmt.Sprintf("INSERT INTO d VALUES (%d, 'during')", i))
	}
	// The confirmed position reaches the delivered transactions...
	waitFor(t, 30*time.Second, "confirmed past the delivered transactions", func() bool {
		return slotLSN(t, pg, "chron", "confirmed_flush_lsn") > lastBefore
	})
	// ...and, for ten status intervals, nothing more is taken.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := sink.txCount(); n != 3 {
			t.Fatalf("%d transactions delivered while draining, want 3", n)
		}
		time.Sleep(10 * time.Millisecond) // watching for a wrong delivery
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if ph := r.src.Phase(); ph != PhaseStopped {
		t.Errorf("phase after Run returned: %s, want stopped", ph)
	}

	// A new Source delivers the two transactions committed during the drain.
	sink2 := newMemSink()
	startSource(t, cfg, sink2)
	waitFor(t, 30*time.Second, "the drained transactions re-delivered", func() bool { return sink2.txCount() >= 2 })
	var ids []any
	for _, c := range sink2.changes() {
		if c.Tx.CommitLSN <= lastBefore {
			t.Errorf("transaction %s, confirmed before the drain, delivered again", c.Tx.CommitLSN)
		}
		ids = append(ids, c.New["id"])
	}
	if len(ids) != 2 || ids[0] != int64(4) || ids[1] != int64(5) {
		t.Fatalf("after the drain the next Source delivered ids %v, want [4 5]", ids)
	}
}

// TestDrainEndsWithTheLastConfirmation: a Source drained while the stream
// carries a steady write load (WAL the walsender has sent and the drained
// loop no longer reads) ends the stream so that, when Run returns, the
// slot's confirmed_flush_lsn is the last position the Source confirmed:
// the walsender processed the last status update before the connection
// closed, rather than a reset losing it.
func TestDrainEndsWithTheLastConfirmation(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 1000) g;`)
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotMode = SnapshotNever
	for round := 0; round < 5; round++ {
		sink := newMemSink()
		sink.asyncAck = true
		r := startSource(t, cfg, sink)
		waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })
		w := startWriter(t, pg.DatabaseURL("postgres"), 1000)
		waitFor(t, 30*time.Second, "transactions under load", func() bool { return sink.txCount() > 200 })
		r.src.Drain()
		waitFor(t, 30*time.Second, "draining", func() bool { return r.src.Phase() == PhaseDraining })
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		_, confirmed := r.src.Positions()
		if got := slotLSN(t, pg, "chron", "confirmed_flush_lsn"); got != confirmed {
			t.Fatalf("round %d: the slot's confirmed_flush_lsn is %s when Run returned; the Source last confirmed %s", round, got, confirmed)
		}
		w.stop(t)
		pg.Exec(t, "postgres", "DELETE FROM h WHERE id > 1000000") // the next writer inserts them again
		waitFor(t, 30*time.Second, "the slot to be released", func() bool {
			var active bool
			err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT active FROM pg_replication_slots WHERE slot_name = 'chron'").Scan(&active)
			return err == nil && !active
		})
	}
}
