package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	dto "github.com/prometheus/client_model/go"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// connectAs opens a Conn to pg's database postgres as user; the test's
// cleanup closes it.
func connectAs(t *testing.T, pg *stack.Postgres, user string) *Conn {
	t.Helper()
	c, err := Connect(t.Context(), ConnSettings{URL: strings.Replace(pg.URL(), "postgres@", user+"@", 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// startWithSlots starts a cluster with table a, publication p for it, and
// the logical (pgoutput) slots named.
func startWithSlots(t *testing.T, opts []stack.PostgresOption, slots ...string) *stack.Postgres {
	t.Helper()
	pg := stack.StartPostgres(t, opts...)
	pg.Exec(t, "postgres", `CREATE TABLE a (id int PRIMARY KEY); CREATE PUBLICATION p FOR TABLE a;`)
	for _, s := range slots {
		// One statement each: a slot cannot be created in a transaction that wrote.
		pg.Exec(t, "postgres", "SELECT pg_create_logical_replication_slot('"+s+"', 'pgoutput')")
	}
	return pg
}

// streamSlot starts streaming slot on a replication connection named app
// (the walsender holds the slot while it is open) and returns it.
func streamSlot(t *testing.T, pg *stack.Postgres, slot, app string) *pgconn.PgConn {
	t.Helper()
	rc, err := pgconn.Connect(t.Context(), pg.ReplicationURL("postgres")+"&application_name="+app)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close(context.Background()) })
	if err := pglogrepl.StartReplication(t.Context(), rc, slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'p'"}}); err != nil {
		t.Fatalf("START_REPLICATION %s: %v", slot, err)
	}
	return rc
}

// lsnOf runs a query returning one pg_lsn as text.
func lsnOf(t *testing.T, pg *stack.Postgres, sql string, args ...any) contract.LSN {
	t.Helper()
	var s string
	if err := pg.Connect(t, "postgres").QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	l, err := contract.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestReadSlot: the slot reader reports what pg_replication_slots holds
// (read independently here), the server's WAL position and slot count, the
// holder's pid and application_name, a temporary slot as temporary, and an
// absent slot as absent with the server's position still read.
func TestReadSlot(t *testing.T) {
	t.Parallel()
	pg := startWithSlots(t, nil, "s")
	pg.Exec(t, "postgres", `SELECT pg_create_physical_replication_slot('phys', true)`)
	pg.Exec(t, "postgres", `INSERT INTO a SELECT generate_series(1, 1000)`)
	conn := connectAs(t, pg, "postgres")
	ctx := t.Context()

	before := lsnOf(t, pg, "SELECT pg_current_wal_lsn()::text")
	si, ok, err := conn.ReadSlot(ctx, "s")
	after := lsnOf(t, pg, "SELECT pg_current_wal_lsn()::text")
	if err != nil || !ok {
		t.Fatalf("ReadSlot(s) = %+v, %v, %v", si, ok, err)
	}
	confirmed := lsnOf(t, pg, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 's'")
	restart := lsnOf(t, pg, "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = 's'")
	if si.Name != "s" || si.Plugin != "pgoutput" || si.Database != "postgres" || si.Temporary || si.Active || si.ActivePID != nil ||
		si.WALStatus != "reserved" || si.Confirmed != confirmed || si.Restart != restart || si.ServerSlots != 2 {
		t.Errorf("ReadSlot(s) = %+v; want pgoutput, postgres, inactive, reserved, confirmed %s, restart %s, 2 slots", si, confirmed, restart)
	}
	if si.Current < before || si.Current > after {
		t.Errorf("Current %s not between %s and %s", si.Current, before, after)
	}
	if lag, ok := si.Lag(); !ok || lag != int64(si.Current)-int64(confirmed) || lag < int64(before)-int64(confirmed) || lag <= 0 {
		t.Errorf("Lag = %d, %v; want Current - confirmed (%s - %s), positive after the inserts", lag, ok, si.Current, confirmed)
	}
	if r, ok := si.Retained(); !ok || r != int64(si.Current)-int64(restart) {
		t.Errorf("Retained = %d, %v; want Current - restart", r, ok)
	}

	phys, ok, err := conn.ReadSlot(ctx, "phys")
	if err != nil || !ok || phys.Plugin != "" || phys.Database != "" || phys.Confirmed != 0 {
		t.Errorf("ReadSlot(phys) = %+v, %v, %v; want a physical slot: no plugin, database or confirmed position", phys, ok, err)
	}
	if _, ok := phys.Lag(); ok {
		t.Error("a physical slot without confirmed_flush_lsn reports a lag")
	}

	holder := streamSlot(t, pg, "s", "holder-app")
	var held SlotInfo
	waitFor(t, 10*time.Second, "slot s active", func() bool {
		held, _, err = conn.ReadSlot(ctx, "s")
		return err == nil && held.Active
	})
	if held.ActivePID == nil || *held.ActivePID != int32(holder.PID()) || held.ApplicationName != "holder-app" {
		t.Errorf("held slot: pid %v app %q; want pid %d, holder-app", held.ActivePID, held.ApplicationName, holder.PID())
	}

	rc, err := pgconn.Connect(ctx, pg.ReplicationURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(context.Background())
	if _, err := pglogrepl.CreateReplicationSlot(ctx, rc, "tmp", "pgoutput", pglogrepl.CreateReplicationSlotOptions{Temporary: true, Mode: pglogrepl.LogicalReplication}); err != nil {
		t.Fatal(err)
	}
	if tmp, ok, err := conn.ReadSlot(ctx, "tmp"); err != nil || !ok || !tmp.Temporary || tmp.ServerSlots != 3 {
		t.Errorf("ReadSlot(tmp) = %+v, %v, %v; want temporary, 3 slots", tmp, ok, err)
	}

	none, ok, err := conn.ReadSlot(ctx, "none")
	if err != nil || ok || none.Name != "none" || none.Current == 0 || none.ServerSlots != 3 {
		t.Errorf("ReadSlot(none) = %+v, %v, %v; want absent, with the WAL position and 3 slots", none, ok, err)
	}
}

// TestCheckSlot: capture's slot acceptance rules, each with its verdict and
// the typed error Source returns.
func TestCheckSlot(t *testing.T) {
	pid := int32(4711)
	ok := SlotInfo{Name: "s", Plugin: "pgoutput", Database: "app", WALStatus: "reserved", Current: 3000, Confirmed: 1000}
	with := func(edit func(*SlotInfo)) SlotInfo { si := ok; edit(&si); return si }
	cases := []struct {
		name    string
		si      SlotInfo
		exists  bool
		verdict Verdict
		err     any
		found   string
	}{
		{"absent", SlotInfo{Name: "s"}, false, Pass, nil, "absent"},
		{"usable", ok, true, Pass, nil, "pgoutput, inactive, confirmed_flush_lsn 0/3E8"},
		{"physical", with(func(s *SlotInfo) { s.Plugin, s.Database = "", "" }), true, Fail, &SlotMismatchError{}, "physical slot"},
		{"other plugin", with(func(s *SlotInfo) { s.Plugin = "test_decoding" }), true, Fail, &SlotMismatchError{}, `"test_decoding"`},
		{"other database", with(func(s *SlotInfo) { s.Database = "other" }), true, Fail, &SlotMismatchError{}, `database "other", not "app"`},
		{"lost", with(func(s *SlotInfo) { s.WALStatus = "lost" }), true, Fail, &SlotLostError{}, "wal_status lost"},
		{"held", with(func(s *SlotInfo) { s.Active, s.ActivePID, s.ApplicationName = true, &pid, "chronicler-capture" }), true, Warn, &SlotInUseError{}, "held by pid 4711, application_name chronicler-capture"},
		{"WAL at risk", with(func(s *SlotInfo) { s.WALStatus = "unreserved" }), true, Warn, nil, "wal_status unreserved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := CheckSlot(tc.si, tc.exists, "app", 0)
			f := fs[0]
			if len(fs) != 1 || f.Check != "slot s" || f.Verdict != tc.verdict || !strings.Contains(f.Found, tc.found) {
				t.Fatalf("CheckSlot = %+v; want one %v finding %q", fs, tc.verdict, tc.found)
			}
			if (f.Verdict == Pass) != (f.Fix == "") {
				t.Errorf("fix %q for verdict %v", f.Fix, f.Verdict)
			}
			switch want := tc.err.(type) {
			case nil:
				if f.Err != nil {
					t.Errorf("Err = %v; want none", f.Err)
				}
			case *SlotMismatchError:
				if !errors.As(f.Err, &want) || want.Slot != "s" {
					t.Errorf("Err = %v; want SlotMismatchError for s", f.Err)
				}
			case *SlotLostError:
				if !errors.As(f.Err, &want) || want.Slot != "s" {
					t.Errorf("Err = %v; want SlotLostError for s", f.Err)
				}
			case *SlotInUseError:
				if !errors.As(f.Err, &want) || want.PID != int(pid) {
					t.Errorf("Err = %v; want SlotInUseError naming pid %d", f.Err, pid)
				}
			}
		})
	}
	// The lag finding: only when asked for, a Warn above the bound.
	if fs := CheckSlot(ok, true, "app", 2000); len(fs) != 2 || fs[1].Check != "slot s lag" || fs[1].Verdict != Pass || !strings.Contains(fs[1].Found, "2000 bytes") {
		t.Errorf("lag within the bound: %+v", fs)
	}
	if fs := CheckSlot(ok, true, "app", 1999); len(fs) != 2 || fs[1].Verdict != Warn || !strings.Contains(fs[1].Found, "above 1999") || fs[1].Err != nil {
		t.Errorf("lag above the bound: %+v", fs)
	}
	if fs := CheckSlot(with(func(s *SlotInfo) { s.Plugin = "x" }), true, "app", 1); len(fs) != 1 {
		t.Errorf("an unusable slot got a lag finding: %+v", fs)
	}
}

// TestWaitSlotFree: the wait returns once the holder lets the slot go (and
// not before), at once for a free or absent slot, and with nil when the
// limit passes while the slot is still held (Run then names the holder).
func TestWaitSlotFree(t *testing.T) {
	t.Parallel()
	pg := startWithSlots(t, nil, "chron")
	src, err := New(baseConfig(pg, "postgres", "a"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.WaitSlotFree(t.Context(), time.Minute); err != nil {
		t.Fatalf("free slot: %v", err)
	}
	holder := streamSlot(t, pg, "chron", "holder")
	conn := connectAs(t, pg, "postgres")
	waitFor(t, 10*time.Second, "slot chron active", func() bool { si, _, _ := conn.ReadSlot(t.Context(), "chron"); return si.Active })
	if err := src.WaitSlotFree(t.Context(), 0); err != nil {
		t.Fatalf("limit passed: %v; want nil", err)
	}
	if si, _, _ := conn.ReadSlot(t.Context(), "chron"); !si.Active {
		t.Fatal("the slot was released before the holder closed")
	}

	done := make(chan error, 1)
	go func() { done <- src.WaitSlotFree(t.Context(), time.Minute) }()
	select {
	case err := <-done:
		t.Fatalf("WaitSlotFree returned %v while the slot is held", err)
	case <-time.After(500 * time.Millisecond): // five polls of the wait
	}
	_ = holder.Close(t.Context())
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("WaitSlotFree did not return within 30 s of the holder closing")
	}
	if si, _, err := conn.ReadSlot(t.Context(), "chron"); err != nil || si.Active {
		t.Errorf("WaitSlotFree returned while the slot is active (%+v, %v)", si, err)
	}
}

// gaugeOf reads a gauge's value.
func gaugeOf(g interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -2
	}
	return m.GetGauge().GetValue()
}

// TestSlotRetainedWALIsReported: a streaming Source exports the WAL the
// server keeps for its slot and the slot's safe_wal_size (-1: unbounded),
// read again while it streams, and CheckRetainedWAL reports both as read,
// with and without a max_slot_wal_keep_size (the README's "The WAL it
// holds is visible").
func TestSlotRetainedWALIsReported(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t) // max_slot_wal_keep_size 4GB
	pg.Exec(t, "postgres", "CREATE TABLE a (id int PRIMARY KEY)")
	cfg := baseConfig(pg, "postgres", "a")
	cfg.SnapshotMode = SnapshotNever
	r := startSource(t, cfg, newMemSink())
	waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })
	pg.Exec(t, "postgres", "INSERT INTO a SELECT generate_series(1, 1000)")
	waitFor(t, 30*time.Second, "the slot gauges read", func() bool { return gaugeOf(r.src.m.safeWALSize) > 0 })
	if ret := gaugeOf(r.src.m.retainedWAL); ret <= 0 {
		t.Errorf("chronicler_capture_slot_retained_wal_bytes = %v; want the WAL kept for the slot (> 0)", ret)
	}

	c := connectAs(t, pg, "postgres")
	si, exists, err := c.ReadSlot(t.Context(), cfg.Slot)
	if err != nil || !exists || si.SafeWALSize == nil {
		t.Fatalf("ReadSlot = %+v, %v, %v; want the slot with a safe_wal_size", si, exists, err)
	}
	ret, _ := si.Retained()
	f := CheckRetainedWAL(si)
	if f.Verdict != Pass || !strings.Contains(f.Found, fmt.Sprintf("%d bytes kept for the slot", ret)) ||
		!strings.Contains(f.Found, fmt.Sprintf("; %d more bytes before the slot is in danger (safe_wal_size)", *si.SafeWALSize)) {
		t.Errorf("bounded: %+v; want the retained bytes and the bytes left before the slot is in danger", f)
	}

	pg.Exec(t, "postgres", "ALTER SYSTEM SET max_slot_wal_keep_size = -1")
	pg.Exec(t, "postgres", "SELECT pg_reload_conf()")
	waitFor(t, 10*time.Second, "safe_wal_size NULL once max_slot_wal_keep_size is -1", func() bool {
		si, _, err = c.ReadSlot(t.Context(), cfg.Slot)
		return err == nil && si.SafeWALSize == nil
	})
	if f = CheckRetainedWAL(si); f.Verdict != Pass || !strings.Contains(f.Found, "no bound (max_slot_wal_keep_size -1)") {
		t.Errorf("unbounded: %+v; want no bound", f)
	}
	// The stream reads the slot again every retainedEvery.
	waitFor(t, 2*retainedEvery, "chronicler_capture_slot_safe_wal_size_bytes -1 (unbounded)", func() bool { return gaugeOf(r.src.m.safeWALSize) == -1 })
}
