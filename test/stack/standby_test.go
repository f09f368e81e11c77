package stack_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestStandbyFailover: a Postgres 17 primary and its physical standby from
// the stack. A row written on the primary is read on the standby; a logical
// slot created with FAILOVER is synchronized to the standby (synced = true,
// sync_replication_slots = on); after the primary is stopped and the
// standby promoted, the standby takes writes and the slot is there with
// the primary's confirmed position.
func TestStandbyFailover(t *testing.T) {
	primary := stack.StartPostgres(t, stack.WithPostgresVersion(17))
	standby := primary.StartStandby(t, stack.StandbyConfig{Slot: "standby1"})
	primary.Exec(t, "postgres", "ALTER SYSTEM SET synchronized_standby_slots = 'standby1'")
	primary.Exec(t, "postgres", "SELECT pg_reload_conf()")
	primary.Exec(t, "postgres", "SELECT pg_create_logical_replication_slot('logical1', 'pgoutput', false, false, true)")
	primary.Exec(t, "postgres", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	sc := standby.Connect(t, "postgres")
	var rec bool
	if err := sc.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil || !rec {
		t.Fatalf("standby: pg_is_in_recovery() = %v, %v; want true", rec, err)
	}
	poll(t, "the row on the standby", func() (bool, error) {
		var n int
		err := sc.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n)
		if pgErr := pgErrCode(err); pgErr == "42P01" { // table not replayed yet
			return false, nil
		}
		return n == 1, err
	})
	pc := primary.Connect(t, "postgres")
	var confirmed string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("standby log:\n%s", standby.LogTail(40))
			rows, _ := sc.Query(context.Background(), "SELECT slot_name, slot_type, temporary, synced, failover, confirmed_flush_lsn::text, restart_lsn::text FROM pg_replication_slots")
			vals, _ := pgx.CollectRows(rows, pgx.RowToMap)
			t.Logf("standby slots: %v", vals)
		}
	})
	poll(t, "logical1 synchronized to the standby", func() (bool, error) {
		// The standby's copy of the slot is sync-ready (persistent) only
		// once the primary's slot has moved past the catalog xmin the
		// standby reserved: consume it, as a live consumer does, up to a
		// running-xacts record written now.
		if _, err := pc.Exec(ctx, "SELECT pg_log_standby_snapshot()"); err != nil {
			return false, err
		}
		if err := pc.QueryRow(ctx, `SELECT end_lsn::text FROM pg_replication_slot_advance('logical1', pg_current_wal_lsn()) s
JOIN pg_replication_slots r ON r.slot_name = s.slot_name AND r.failover`).Scan(&confirmed); err != nil {
			return false, fmt.Errorf("advancing the primary's slot logical1 (with failover): %w", err)
		}
		var n int
		err := sc.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'logical1' AND synced AND NOT temporary AND confirmed_flush_lsn = $1::pg_lsn", confirmed).Scan(&n)
		return n == 1, err
	})
	primary.Stop()
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	standby.Exec(t, "postgres", "INSERT INTO t VALUES (2)")
	nc, err := pgx.Connect(ctx, stack.MultiHostURL("postgres", primary, standby))
	if err != nil {
		t.Fatalf("multi-host URL after the failover: %v", err)
	}
	defer nc.Close(context.Background())
	var n int
	var slot string
	if err := nc.QueryRow(ctx, "SELECT (SELECT count(*) FROM t), (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'logical1')").Scan(&n, &slot); err != nil {
		t.Fatal(err)
	}
	if n != 2 || slot != confirmed {
		t.Fatalf("after promotion: %d rows, slot logical1 at %s; want 2 rows and the primary's %s", n, slot, confirmed)
	}
}

func pgErrCode(err error) string {
	var pe interface{ SQLState() string }
	if errors.As(err, &pe) {
		return pe.SQLState()
	}
	return ""
}

// poll checks cond every 50 ms for up to a minute.
func poll(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, with a deadline
	}
}
