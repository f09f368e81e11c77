package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestCheckFailover (Postgres 17): `chronicler check` with
// postgres.failover_slot, against a primary and then its physical standby
// from the test stack. On the primary: the slot absent (run creates it with
// FAILOVER), an existing slot without failover (warn, fix
// ALTER_REPLICATION_SLOT), synchronized_standby_slots empty (warn), naming
// the streaming standby's slot (ok, hot_standby_feedback seen) or a slot
// that does not exist (FAIL, exit 1). On the standby: the server role
// (warn: capture needs the primary) and the standby's side of slot
// synchronization, each line with what it found.
func TestCheckFailover(t *testing.T) {
	s := startShop(t, false, stack.WithPostgresVersion(17))
	withFailover := func(y string) string {
		return strings.Replace(y, "  heartbeat_interval: 1h\n", "  heartbeat_interval: 1h\n  failover_slot: true\n", 1)
	}
	cfg := s.configFile(t, "check_fo", withFailover)
	check := func(cfg string) (int, preflight.Report, string) {
		t.Helper()
		return checkJSON(t, "--only", "capture", "--config", cfg)
	}
	expect := func(rep preflight.Report, all, name string, status preflight.Status, found, fix string) {
		t.Helper()
		c, ok := findCheck(rep, name)
		switch {
		case !ok:
			t.Errorf("no check %q in:\n%s", name, all)
		case c.Status != status || !strings.Contains(c.Found, found) || !strings.Contains(c.Fix, fix):
			t.Errorf("%s: %s, found %q, fix %q; want %s, found containing %q, fix containing %q", name, c.Status, c.Found, c.Fix, status, found, fix)
		}
	}

	// A primary without a standby, no slot yet.
	code, rep, all := check(cfg)
	if code != 0 {
		t.Fatalf("exit %d, want 0 (warnings only):\n%s", code, all)
	}
	expect(rep, all, "postgres slot check_fo failover", preflight.OK, "absent: chronicler run creates it with FAILOVER true", "")
	expect(rep, all, "postgres synchronized_standby_slots", preflight.Warn, "chronicler may receive changes before any standby has them",
		"ALTER SYSTEM SET synchronized_standby_slots")
	expect(rep, all, "postgres slot synchronization", preflight.OK, "not visible from the primary", "")

	// An existing slot without failover.
	s.pg.Exec(t, "postgres", "SELECT pg_create_logical_replication_slot('check_fo', 'pgoutput')")
	_, rep, all = check(cfg)
	expect(rep, all, "postgres slot check_fo failover", preflight.Warn, "off", `ALTER_REPLICATION_SLOT "check_fo" (FAILOVER true)`)
	s.pg.Exec(t, "postgres", "SELECT pg_drop_replication_slot('check_fo')")

	// A streaming standby named by synchronized_standby_slots. Its first
	// hot_standby_feedback report comes within wal_receiver_status_interval.
	standby := s.pg.StartStandby(t, stack.StandbyConfig{Slot: "standby1", Settings: map[string]string{"wal_receiver_status_interval": "1s"}})
	s.pg.Exec(t, "postgres", "ALTER SYSTEM SET synchronized_standby_slots = 'standby1'")
	s.pg.Exec(t, "postgres", "SELECT pg_reload_conf()")
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, rep, all = check(cfg)
		if c, _ := findCheck(rep, "postgres standby slot standby1"); c.Status == preflight.OK || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling interval, with a deadline
	}
	if code != 0 {
		t.Errorf("with the standby: exit %d, want 0:\n%s", code, all)
	}
	expect(rep, all, "postgres synchronized_standby_slots", preflight.OK, "standby1: Postgres sends chronicler a change only once these standbys have it", "")
	expect(rep, all, "postgres standby slot standby1", preflight.OK, "hot_standby_feedback on", "")

	// A slot that does not exist in synchronized_standby_slots.
	s.pg.Exec(t, "postgres", "ALTER SYSTEM SET synchronized_standby_slots = 'standby1, nosuch'")
	s.pg.Exec(t, "postgres", "SELECT pg_reload_conf()")
	code, rep, all = check(cfg)
	if code != 1 {
		t.Errorf("synchronized_standby_slots naming a missing slot: exit %d, want 1:\n%s", code, all)
	}
	expect(rep, all, "postgres standby slot nosuch", preflight.Fail, "does not exist: capture's changes would wait for it forever",
		"pg_create_physical_replication_slot('nosuch')")
	s.pg.Exec(t, "postgres", "ALTER SYSTEM SET synchronized_standby_slots = 'standby1'")
	s.pg.Exec(t, "postgres", "SELECT pg_reload_conf()")

	// Pointed at the standby.
	onStandby := s.configFile(t, "check_fo", func(y string) string {
		return strings.Replace(withFailover(y), s.pg.URL(), standby.URL(), 1)
	})
	_, rep, all = check(onStandby)
	t.Logf("chronicler check on the standby:\n%s", all)
	expect(rep, all, "postgres server role", preflight.Warn, "a standby (in recovery)", "target_session_attrs=read-write")
	expect(rep, all, "postgres standby sync_replication_slots", preflight.OK, "on", "")
	expect(rep, all, "postgres standby hot_standby_feedback", preflight.OK, "on", "")
	expect(rep, all, "postgres standby primary_slot_name", preflight.OK, "standby1", "")
	expect(rep, all, "postgres standby primary_conninfo", preflight.OK, "names a dbname", "")
	expect(rep, all, "postgres standby wal_level", preflight.OK, "logical", "")
	expect(rep, all, "postgres slot check_fo on the standby", preflight.Warn, "absent: not synchronized here", "")
	if strings.Contains(all, "application_name=standby1") {
		t.Error("check printed the standby's primary_conninfo")
	}
}
