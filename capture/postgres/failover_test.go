package postgres

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// findingOf returns the finding whose Check is check; it fails the test
// when there is none.
func findingOf(t *testing.T, fs []Finding, check string) Finding {
	t.Helper()
	for _, f := range fs {
		if f.Check == check {
			return f
		}
	}
	t.Fatalf("no finding %q among %v", check, fs)
	return Finding{}
}

// readFacts reads what CheckFailover needs through the API check uses.
func readFacts(t *testing.T, url, slot string) (Failover, SlotInfo, bool) {
	t.Helper()
	c, err := Connect(t.Context(), ConnSettings{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	srv, err := c.ReadServer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fo, err := c.ReadFailover(t.Context(), srv)
	if err != nil {
		t.Fatal(err)
	}
	si, exists, err := c.ReadSlot(t.Context(), slot)
	if err != nil {
		t.Fatal(err)
	}
	return fo, si, exists
}

// slotFailover reads pg_replication_slots.failover of slot.
func slotFailover(t *testing.T, pg *stack.Postgres, slot string) bool {
	t.Helper()
	var on bool
	if err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT failover FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&on); err != nil {
		t.Fatalf("reading slot %s: %v", slot, err)
	}
	return on
}

// TestFailoverSlot (Postgres 17): with FailoverSlot the slot is created with
// FAILOVER true; an existing slot without it is reported by the check (a
// Warn with the ALTER_REPLICATION_SLOT fix), planned by a dry run, and
// turned on by the next start; synchronized_standby_slots naming a slot
// that does not exist is refused (capture would wait for it forever).
func TestFailoverSlot(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t, stack.WithPostgresVersion(17))
	pg.Exec(t, "postgres", "CREATE TABLE a (id int PRIMARY KEY)")

	t.Run("created with failover", func(t *testing.T) {
		cfg := baseConfig(pg, "postgres", "a")
		cfg.Slot, cfg.FailoverSlot = "fo_new", true
		r := startSource(t, cfg, newMemSink())
		waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })
		if !slotFailover(t, pg, "fo_new") {
			t.Fatal("slot fo_new was created without failover")
		}
		fo, si, exists := readFacts(t, pg.URL(), "fo_new")
		if f := findingOf(t, CheckFailover(fo, si, exists, true), "slot fo_new failover"); f.Verdict != Pass {
			t.Fatalf("check of a failover slot: %v", f)
		}
	})

	t.Run("turned on for an existing slot", func(t *testing.T) {
		pg.Exec(t, "postgres", "SELECT pg_create_logical_replication_slot('fo_old', 'pgoutput')")
		fo, si, exists := readFacts(t, pg.URL(), "fo_old")
		f := findingOf(t, CheckFailover(fo, si, exists, true), "slot fo_old failover")
		if f.Verdict != Warn || !strings.Contains(f.Fix, `ALTER_REPLICATION_SLOT "fo_old" (FAILOVER true)`) {
			t.Fatalf("check of a slot without failover: %v; want a Warn with the ALTER_REPLICATION_SLOT fix", f)
		}
		cfg := baseConfig(pg, "postgres", "a")
		cfg.Slot, cfg.FailoverSlot, cfg.SnapshotMode, cfg.DryRun = "fo_old", true, SnapshotNever, true
		src, err := New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Run(t.Context(), newMemSink()); err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if p := src.Planned(); len(p) != 1 || p[0] != `ALTER_REPLICATION_SLOT "fo_old" (FAILOVER true)` {
			t.Fatalf("dry run planned %q; want the ALTER_REPLICATION_SLOT alone", p)
		}
		if slotFailover(t, pg, "fo_old") {
			t.Fatal("the dry run turned failover on")
		}
		cfg.DryRun = false
		r := startSource(t, cfg, newMemSink())
		waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })
		if !slotFailover(t, pg, "fo_old") {
			t.Fatal("the start did not turn failover on for slot fo_old")
		}
	})

	t.Run("synchronized_standby_slots naming no slot", func(t *testing.T) {
		fo, si, exists := readFacts(t, pg.URL(), "fo_x")
		if f := findingOf(t, CheckFailover(fo, si, exists, true), "synchronized_standby_slots"); f.Verdict != Warn {
			t.Fatalf("synchronized_standby_slots empty: %v; want a Warn", f)
		}
		pg.Exec(t, "postgres", "ALTER SYSTEM SET synchronized_standby_slots = 'nosuch'")
		pg.Exec(t, "postgres", "SELECT pg_reload_conf()")
		defer func() {
			pg.Exec(t, "postgres", "ALTER SYSTEM RESET synchronized_standby_slots")
			pg.Exec(t, "postgres", "SELECT pg_reload_conf()")
		}()
		// pg_reload_conf signals; poll until this backend's view has it.
		waitFor(t, 10*time.Second, "the setting", func() bool {
			fo, _, _ = readFacts(t, pg.URL(), "fo_x")
			return fo.Settings["synchronized_standby_slots"] == "nosuch"
		})
		f := findingOf(t, CheckFailover(fo, si, exists, true), "standby slot nosuch")
		var se *StandbySlotError
		if f.Verdict != Fail || !errors.As(f.Err, &se) || se.Slot != "nosuch" {
			t.Fatalf("standby slot nosuch: %v; want a Fail with StandbySlotError", f)
		}
		cfg := baseConfig(pg, "postgres", "a")
		cfg.Slot, cfg.FailoverSlot = "fo_x", true
		if err := runOnce(t, cfg); !errors.As(err, &se) || se.Slot != "nosuch" {
			t.Fatalf("Run = %v; want StandbySlotError for nosuch", err)
		}
		cfg.FailoverSlot = false // the setting holds back failover slots only
		if f := CheckFailover(fo, si, exists, false); len(f) != 0 {
			t.Fatalf("findings without failover_slot on a primary: %v; want none", f)
		}
	})
}

// TestFailoverSlotRefusedBefore17: on Postgres 16, FailoverSlot stops Run
// with a *FailoverUnsupportedError naming the version, and no slot is
// created.
func TestFailoverSlotRefusedBefore17(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t, stack.WithPostgresVersion(16))
	pg.Exec(t, "postgres", "CREATE TABLE a (id int PRIMARY KEY)")
	cfg := baseConfig(pg, "postgres", "a")
	cfg.FailoverSlot = true
	var fe *FailoverUnsupportedError
	if err := runOnce(t, cfg); !errors.As(err, &fe) || fe.Version != 16 {
		t.Fatalf("Run = %v; want FailoverUnsupportedError for 16", err)
	}
	fo, si, exists := readFacts(t, pg.URL(), cfg.Slot)
	if exists {
		t.Fatal("the refused start created the slot")
	}
	if f := findingOf(t, CheckFailover(fo, si, exists, true), "failover slot"); f.Verdict != Fail || f.Err == nil {
		t.Fatalf("check on 16: %v; want a Fail", f)
	}
}

// TestFailoverToStandby (Postgres 17, a primary and a physical standby from
// the test stack): the checks pass on a primary set up for failover and
// show the standby's side; a Source pointed at the standby waits (a
// StandbyError it retries) while another captures on the primary; the
// primary is stopped and the standby promoted; the waiting Source then
// streams from the synchronized slot, and the two sinks together hold every
// row of the promoted database, each transaction re-delivered identically.
func TestFailoverToStandby(t *testing.T) {
	t.Parallel()
	primary := stack.StartPostgres(t, stack.WithPostgresVersion(17))
	primary.Exec(t, "postgres", "CREATE TABLE a (id int PRIMARY KEY)")
	// The standby reports hot_standby_feedback every second instead of ten.
	standby := primary.StartStandby(t, stack.StandbyConfig{Slot: "standby1", Settings: map[string]string{"wal_receiver_status_interval": "1s"}})
	primary.Exec(t, "postgres", "ALTER SYSTEM SET synchronized_standby_slots = 'standby1'")
	primary.Exec(t, "postgres", "SELECT pg_reload_conf()")

	cfg := baseConfig(primary, "postgres", "a")
	cfg.Slot, cfg.FailoverSlot, cfg.SnapshotMode = "fo", true, SnapshotNever
	first := startSource(t, cfg, newMemSink())
	waitFor(t, 30*time.Second, "streaming on the primary", func() bool { return first.src.Phase() == PhaseStreaming })

	scfg := cfg
	scfg.URL = standby.DatabaseURL("postgres")
	second := startSource(t, scfg, newMemSink())

	insert := func(pg *stack.Postgres, from, to int) {
		pg.Exec(t, "postgres", fmt.Sprintf("INSERT INTO a SELECT g FROM generate_series(%d, %d) g", from, to))
	}
	for i := range 20 {
		insert(primary, i*10+1, i*10+10)
	}
	// The standby's copy is sync-ready once the primary's slot has moved
	// past the catalog xmin the standby reserved (a running-xacts record
	// later than the copy, decoded and confirmed).
	waitFor(t, 60*time.Second, "the slot synchronized and sync-ready on the standby, its feedback on the primary", func() bool {
		primary.Exec(t, "postgres", "SELECT pg_log_standby_snapshot()")
		_, si, exists := readFacts(t, standby.URL(), "fo")
		_, phys, _ := readFacts(t, primary.URL(), "standby1")
		return exists && si.Synced != nil && *si.Synced && !si.Temporary && si.Confirmed > 0 && phys.CatalogXmin != ""
	})
	fo, si, exists := readFacts(t, primary.URL(), "fo")
	for _, f := range CheckFailover(fo, si, exists, true) {
		if f.Verdict != Pass {
			t.Errorf("primary set up for failover: %v; want ok", f)
		}
	}
	if f := findingOf(t, CheckFailover(fo, si, exists, true), "standby slot standby1"); !strings.Contains(f.Found, "hot_standby_feedback on") {
		t.Errorf("standby slot: %v; want hot_standby_feedback seen", f)
	}
	fo, si, exists = readFacts(t, standby.URL(), "fo")
	fs := CheckFailover(fo, si, exists, true)
	var sbe *StandbyError
	if f := findingOf(t, fs, "server role"); f.Verdict != Warn || !errors.As(f.Err, &sbe) {
		t.Errorf("standby: %v; want a Warn with StandbyError", f)
	}
	for _, name := range []string{"standby sync_replication_slots", "standby hot_standby_feedback", "standby primary_slot_name", "standby primary_conninfo", "standby wal_level", "slot fo on the standby"} {
		if f := findingOf(t, fs, name); f.Verdict != Pass {
			t.Errorf("standby set up for failover: %v; want ok", f)
		}
	}
	if second.src.Phase() == PhaseStreaming {
		t.Fatal("the Source pointed at the standby streams before the promotion")
	}
	select {
	case err := <-second.done:
		t.Fatalf("the Source pointed at the standby returned %v; want it to wait for the promotion", err)
	default:
	}

	// Failover: what the first Source confirmed is what the standby's copy
	// may lag behind; the second re-delivers from there.
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	primary.Stop()
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	insert(standby, 201, 300)
	waitFor(t, 60*time.Second, "the second Source streaming on the promoted standby", func() bool { return second.src.Phase() == PhaseStreaming })
	waitFor(t, 60*time.Second, "row 300 captured after the failover", func() bool {
		for _, c := range second.sink.changes() {
			if c.New["id"] == int64(300) {
				return true
			}
		}
		return false
	})

	got := map[int64]contract.LSN{}
	for _, s := range []*memSink{first.sink, second.sink} {
		s.mu.Lock()
		if s.mismatch != nil {
			t.Error(s.mismatch)
		}
		s.mu.Unlock()
		for _, c := range s.changes() {
			got[c.New["id"].(int64)] = c.Tx.CommitLSN
		}
	}
	var n int
	rows, err := standby.Connect(t, "postgres").Query(t.Context(), "SELECT id FROM a ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, ok := got[id]; !ok {
			t.Errorf("row %d of the promoted database was not captured", id)
		}
		n++
	}
	if n != 300 || len(got) != n {
		t.Fatalf("%d rows in the promoted database, %d captured; want 300 of each", n, len(got))
	}
	again, differ := redelivered(second.sink, first.sink)
	if differ != 0 {
		t.Errorf("%d transactions re-delivered after the failover differ from their first delivery", differ)
	}
	t.Logf("figure: %d transactions on the primary, %d after the failover (%d re-delivered from the promoted standby's copy of the slot)",
		first.sink.txCount(), second.sink.txCount(), again)
}

// redelivered counts the transactions b delivered that a had delivered too,
// and how many of those differ (the same WAL decodes the same way on the
// promoted standby: same commit LSN, xid, changes, ordinals).
func redelivered(b, a *memSink) (n, differ int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	for lsn, txs := range b.byLSN {
		if prev := a.byLSN[lsn]; len(prev) > 0 {
			n++
			if !reflect.DeepEqual(prev[0], txs[0]) {
				differ++
			}
		}
	}
	return n, differ
}
