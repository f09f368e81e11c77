package e2e

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestFailoverToPromotedStandby: a Postgres 17 primary and a physical
// standby from the test stack (sync_replication_slots = on,
// hot_standby_feedback = on, the primary's synchronized_standby_slots
// naming the standby's slot), chronicler configured with
// postgres.failover_slot and a multi-host URL with
// target_session_attrs=read-write. Under load the standby is cut off
// from the primary (primary_conninfo emptied) so it falls behind, the
// primary goes on committing, then it is killed (SIGKILL: a crash, not a clean shutdown
// that would send the standby everything); chronicler's HA lease goes with
// it and it exits. The standby
// is promoted, transfers are committed on it while chronicler is down, then
// chronicler is started again on the same configuration: the multi-host URL
// leads it to the promoted standby, where it resumes from the synchronized
// copy of the slot (no new slot, no new snapshot) under more load.
//
// What "committed" means: a transfer the old primary acknowledged after the
// standby's last received WAL is lost with the crash (the replication is
// asynchronous, and synchronous_commit is off), so the test compares the
// store with the promoted database, the one the application goes on with.
// The store must hold exactly its history, in order per stream: nothing of
// the lost transfers (synchronized_standby_slots holds back from chronicler
// what the standby has not confirmed), nothing missing (the slot was there),
// nothing twice (what the standby's copy of the slot re-delivers is
// de-duplicated).
func TestFailoverToPromotedStandby(t *testing.T) {
	phase1, phase2, phase3 := 3000, 1500, 1500
	if testing.Short() {
		phase1, phase2, phase3 = 1000, 500, 500
	}
	e := newEnvWith(t, setup{schema: schema, rules: rules, tables: "[public.accounts, public.history]",
		pgExtra: "  failover_slot: true\n", pgOpts: []stack.PostgresOption{stack.WithPostgresVersion(17)}})
	primary := e.pg
	standby := primary.StartStandby(t, stack.StandbyConfig{Slot: "standby1"})
	// The slot never gets ahead of the standby: the primary's walsenders
	// send chronicler only what the standby's slot has confirmed.
	primary.Exec(t, "postgres", "ALTER SYSTEM SET synchronized_standby_slots = 'standby1'")
	primary.Exec(t, "postgres", "SELECT pg_reload_conf()")
	multi := stack.MultiHostURL("app", primary, standby)
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.cfg, []byte(strings.Replace(string(b), "url: "+e.dbURL, "url: "+multi, 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	e.startChronicler()
	e.waitLog("capture: streaming")
	waitSyncReady(t, primary, standby)

	// Phase 1: load on the primary, which is killed in the middle of it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.workload(ctx, 1<<30, 4) }()
	deadline := time.Now().Add(2 * time.Minute)
	for e.committed.Load() < int64(phase1) {
		if time.Now().After(deadline) {
			t.Fatalf("the workload committed %d transfers in 2 minutes; want %d before the crash", e.committed.Load(), phase1)
		}
		e.checkRunning()
		time.Sleep(10 * time.Millisecond) // polling interval, with a deadline
	}
	// The standby falls behind: it is cut off from the primary (its
	// primary_conninfo emptied, so its walreceiver stops) while the primary
	// goes on committing. Without synchronized_standby_slots chronicler
	// would go on storing changes the promoted standby never gets.
	standby.Exec(t, "postgres", "ALTER SYSTEM SET primary_conninfo = ''")
	standby.Exec(t, "postgres", "SELECT pg_reload_conf()")
	sc := standby.Connect(t, "postgres")
	for {
		var receivers int
		if err := sc.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_wal_receiver").Scan(&receivers); err != nil {
			t.Fatal(err)
		}
		if receivers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the standby's walreceiver did not stop")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, with a deadline
	}
	paused := e.committed.Load()
	for e.committed.Load() < paused+int64(phase1/5) {
		if time.Now().After(deadline) {
			t.Fatalf("the workload committed %d transfers in 2 minutes; want %d before the crash", e.committed.Load(), paused+int64(phase1/5))
		}
		e.checkRunning()
		time.Sleep(10 * time.Millisecond) // polling interval, with a deadline
	}
	time.Sleep(500 * time.Millisecond) // past wal_writer_delay (200ms): the last commits are flushed on the primary
	primary.Kill()
	killedAt := time.Now()
	<-done // the workload fails with its connections
	acked := e.committed.Load()
	select {
	case err := <-e.exited:
		e.chron = nil
		t.Logf("chronicler exited %s after the primary's crash: %v", time.Since(killedAt).Round(time.Millisecond), err)
	case <-time.After(60 * time.Second):
		t.Fatal("chronicler did not stop within 60s of the primary's crash (its HA lock session was on it)")
	}

	// Phase 2: the standby promoted; the application goes on while
	// chronicler is down. Without a synchronized slot these would be lost.
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	e.pg, e.dbURL = standby, standby.DatabaseURL("app")
	var survived int64
	if err := e.conn().QueryRow(context.Background(), "SELECT count(*) FROM history").Scan(&survived); err != nil {
		t.Fatal(err)
	}
	if survived > acked {
		t.Fatalf("the promoted database holds %d transfers; the workload saw only %d committed", survived, acked)
	}
	if err := e.workload(context.Background(), phase2, 4); err != nil {
		t.Fatalf("phase 2 on the promoted standby: %v", err)
	}

	// Phase 3: chronicler again, through the same multi-host URL, under load.
	e.startChronicler()
	e.waitLog("capture: streaming")
	if err := e.workload(context.Background(), phase3, 4); err != nil {
		t.Fatalf("phase 3: %v", err)
	}
	e.waitCaughtUp(60 * time.Second)
	e.stopChronicler()
	if b, err := os.ReadFile(e.logf.Name()); err != nil {
		t.Fatal(err)
	} else if after := string(b[e.startOff:]); strings.Contains(after, "initial snapshot started") || strings.Contains(after, "CREATE_REPLICATION_SLOT") {
		t.Fatal("after the failover chronicler created a slot or took a snapshot: the synchronized slot was not used")
	}
	e.verify(e.store.client(t))
	t.Logf("figure: %d transfers acknowledged by the old primary, %d of them in the promoted database (%d lost with the crash), then %d + %d on the promoted standby",
		acked, survived, acked-survived, phase2, phase3)
}

// waitSyncReady waits until the standby's copy of chronicler's slot is
// synchronized and sync-ready (not temporary: a temporary copy is dropped
// at promotion). It becomes so once the primary's slot has moved past the
// catalog xmin the standby reserved, which takes a running-xacts record
// after the copy: the loop writes one (pg_log_standby_snapshot) rather than
// wait up to 15s for the background writer's.
func waitSyncReady(t *testing.T, primary, standby *stack.Postgres) {
	t.Helper()
	sc := standby.Connect(t, "postgres")
	deadline := time.Now().Add(90 * time.Second)
	for {
		primary.Exec(t, "postgres", "SELECT pg_log_standby_snapshot()")
		var ready bool
		err := sc.QueryRow(context.Background(), "SELECT synced AND NOT temporary FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&ready)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s was not synchronized to the standby within 90s; standby log:\n%s", slot, standby.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
	}
}
