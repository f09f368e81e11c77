package e2e

import (
	"context"
	"errors"
	"fmt"
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
// target_session_attrs=read-write. Under load the standby is cut off from
// the primary (primary_conninfo emptied) so it falls behind, the primary
// goes on committing, then it is killed (SIGKILL: a crash, not a clean
// shutdown that would send the standby everything). The standby is
// promoted and transfers are committed on it, then more under load while
// chronicler streams again from the promoted standby through the same
// multi-host URL, from the synchronized copy of the slot (no new slot, no
// new snapshot). Subtest ha: the HA lock session goes with the primary and
// chronicler exits; it is started again after the promotion. Subtest
// no-ha: chronicler keeps running, and its capture reconnects by itself
// once the promoted standby accepts writes.
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
	t.Run("ha", func(t *testing.T) { testFailover(t, true) })
	t.Run("no-ha", func(t *testing.T) { testFailover(t, false) })
}

// testFailover runs TestFailoverToPromotedStandby with HA on (the lost
// lock session stops chronicler, which is started again after the
// promotion) or off (chronicler keeps running: its capture reconnects
// through the multi-host URL until the promoted standby accepts writes).
func testFailover(t *testing.T, ha bool) {
	phase1, phase2, phase3 := 3000, 1500, 1500
	if testing.Short() {
		phase1, phase2, phase3 = 1000, 500, 500
	}
	su := setup{schema: schema, rules: rules, tables: "[public.accounts, public.history]",
		pgExtra: "  failover_slot: true\n", pgOpts: []stack.PostgresOption{stack.WithPostgresVersion(17)}}
	if !ha {
		su.extra = "ha:\n  enabled: false\n"
	}
	e := newEnvWith(t, su)
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
	waitUntil(t, e, 2*time.Minute, fmt.Sprintf("%d committed transfers before the standby is cut off", phase1),
		func() bool { return e.committed.Load() >= int64(phase1) })
	// The standby falls behind: it is cut off from the primary (its
	// primary_conninfo emptied, so its walreceiver stops) while the primary
	// goes on committing. Without synchronized_standby_slots chronicler
	// would go on storing changes the promoted standby never gets.
	standby.Exec(t, "postgres", "ALTER SYSTEM SET primary_conninfo = ''")
	standby.Exec(t, "postgres", "SELECT pg_reload_conf()")
	sc := standby.Connect(t, "postgres")
	waitUntil(t, e, time.Minute, "stop of the standby's walreceiver", func() bool {
		var receivers int
		if err := sc.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_wal_receiver").Scan(&receivers); err != nil {
			t.Fatal(err)
		}
		return receivers == 0
	})
	paused := e.committed.Load()
	waitUntil(t, e, time.Minute, fmt.Sprintf("%d more committed transfers before the crash", phase1/5),
		func() bool { return e.committed.Load() >= paused+int64(phase1/5) })
	time.Sleep(500 * time.Millisecond) // past wal_writer_delay (200ms): the last commits are flushed on the primary
	primary.Kill()
	killedAt := time.Now()
	<-done // the workload fails with its connections
	acked := e.committed.Load()
	crashOff := e.logSize()
	if ha {
		select {
		case err := <-e.exited:
			e.chron = nil
			t.Logf("chronicler exited %s after the primary's crash: %v", time.Since(killedAt).Round(time.Millisecond), err)
		case <-time.After(60 * time.Second):
			t.Fatal("chronicler did not stop within 60s of the primary's crash (its HA lock session was on it)")
		}
	}

	// Phase 2: the standby promoted; the application goes on, while
	// chronicler is down (HA) or reconnecting (no HA). Without a
	// synchronized slot these would be lost.
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

	// Phase 3: chronicler, through the same multi-host URL, under load:
	// started again (HA) or still running since before the crash (no HA).
	if ha {
		e.startChronicler()
		e.waitLog("capture: streaming")
	} else {
		e.checkRunning()
		started := e.startOff
		e.startOff = crashOff // waitLog looks at what was logged after the crash
		e.waitLog("capture: streaming")
		e.startOff = started
	}
	if err := e.workload(context.Background(), phase3, 4); err != nil {
		t.Fatalf("phase 3: %v", err)
	}
	e.waitCaughtUp(60 * time.Second)
	e.stopChronicler()
	if b, err := os.ReadFile(e.logf.Name()); err != nil {
		t.Fatal(err)
	} else if after := string(b[crashOff:]); strings.Contains(after, "initial snapshot started") || strings.Contains(after, "CREATE_REPLICATION_SLOT") {
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
