package ha_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/ha"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestLockIDIsFNV1a64: the lock key is FNV-1a 64 (known vectors), so every
// instance of a slot, whatever its version, computes the same lock.
func TestLockIDIsFNV1a64(t *testing.T) {
	for key, want := range map[string]uint64{"": 0xcbf29ce484222325, "a": 0xaf63dc4c8601ec8c, "foobar": 0x85944171f73967e8} {
		if got := ha.LockID(key); uint64(got) != want {
			t.Errorf("LockID(%q) = %#x, want %#x", key, uint64(got), want)
		}
	}
}

// TestConfigErrorsAreCollected: every missing setting is reported.
func TestConfigErrorsAreCollected(t *testing.T) {
	_, err := ha.New(ha.Config{})
	var n int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if _, ok := e.(*ha.ConfigError); ok {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("New(empty) = %v; want 2 ConfigErrors (url, key)", err)
	}
}

// elector is an Elector of key (terminating slot's leftover walsender when
// slot is set) with a 1s keepalive and a 50ms poll.
func elector(t *testing.T, url, key, slot string) *ha.Elector {
	t.Helper()
	e, err := ha.New(ha.Config{Conn: postgres.ConnSettings{URL: url}, Key: key, Slot: slot, Keepalive: time.Second, Poll: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestOneActiveAndTakeover: of two electors of one key, one is active and
// the other a healthy standby; when the active one's session is killed on
// the server, its lease is lost and the standby becomes active. A released
// lease hands over too, and another key is independent.
func TestOneActiveAndTakeover(t *testing.T) {
	pg := stack.StartPostgres(t)
	url := pg.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a, b := elector(t, url, "chronicler/s1", ""), elector(t, url, "chronicler/s1", "")
	la, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release()
	got := make(chan *ha.Lease, 1)
	go func() {
		l, err := b.Acquire(ctx)
		if err != nil {
			t.Errorf("standby Acquire: %v", err)
		}
		got <- l
	}()
	// The standby polls and stays standby while a holds the lock.
	deadline := time.Now().Add(10 * time.Second)
	for !b.Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("the standby never reported a working lock session")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, with a deadline
	}
	select {
	case <-got:
		t.Fatal("the standby acquired a lock the active instance holds")
	case <-time.After(500 * time.Millisecond): // ten polls of the standby
	}
	if !a.Active() || b.Active() {
		t.Fatalf("active: a %v, b %v; want a only", a.Active(), b.Active())
	}

	// Another key is another lock.
	other := elector(t, url, "chronicler/s2", "")
	lo, err := other.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lo.Release()

	// Kill a's session on the server: its lease is lost, b takes over.
	conn := pg.Connect(t, "postgres")
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = $1",
		ha.LockID("chronicler/s1")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("terminated %d lock holders, want 1", n)
	}
	select {
	case <-la.Lost():
		if la.Err() == nil {
			t.Error("lost lease without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the active instance did not notice its lost session within 10s (keepalive 1s)")
	}
	var lb *ha.Lease
	select {
	case lb = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the standby did not take over within 10s")
	}
	if lb == nil || !b.Active() || a.Active() {
		t.Fatalf("after takeover: a active %v, b active %v", a.Active(), b.Active())
	}

	// Release hands over to the next one.
	c := elector(t, url, "chronicler/s1", "")
	done := make(chan *ha.Lease, 1)
	go func() { l, _ := c.Acquire(ctx); done <- l }()
	lb.Release()
	select {
	case lc := <-done:
		if lc == nil {
			t.Fatal("no lease after release")
		}
		lc.Release()
	case <-time.After(10 * time.Second):
		t.Fatal("a released lock was not taken within 10s")
	}
}

// holdSlot starts streaming slot on a replication connection named app and
// returns that connection (the walsender holds the slot while it is open).
func holdSlot(t *testing.T, ctx context.Context, pg *stack.Postgres, slot, app string) *pgconn.PgConn {
	t.Helper()
	rc, err := pgconn.Connect(ctx, pg.ReplicationURL("postgres")+"&application_name="+app)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close(context.Background()) })
	if err := pglogrepl.StartReplication(ctx, rc, slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'p'"}}); err != nil {
		t.Fatalf("START_REPLICATION %s: %v", slot, err)
	}
	return rc
}

// TestTakeoverTerminatesLeftoverWalsender: the instance that gets the lock
// terminates a previous Chronicler instance's walsender still holding the
// slot (application_name chronicler-capture), and leaves another client's
// walsender on another slot alone.
func TestTakeoverTerminatesLeftoverWalsender(t *testing.T) {
	pg := stack.StartPostgres(t)
	url := pg.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := pg.Connect(t, "postgres")
	for _, q := range []string{"CREATE PUBLICATION p FOR ALL TABLES",
		"SELECT pg_create_logical_replication_slot('s1', 'pgoutput')",
		"SELECT pg_create_logical_replication_slot('other', 'pgoutput')"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	holdSlot(t, ctx, pg, "s1", postgres.CaptureApplicationName)
	holdSlot(t, ctx, pg, "other", "someone-else")
	active := func(slot string) bool {
		var a bool
		if err := conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	if !active("s1") || !active("other") {
		t.Fatal("the slots are not held before the takeover")
	}

	lease, err := elector(t, url, "chronicler/s1", "s1").Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	deadline := time.Now().Add(15 * time.Second)
	for active("s1") {
		if time.Now().After(deadline) {
			t.Fatal("the leftover chronicler-capture walsender still holds s1 15 s after the takeover")
		}
		time.Sleep(20 * time.Millisecond) // polling interval, with a deadline
	}
	if !active("other") {
		t.Fatal("the takeover terminated another client's walsender")
	}
}

// TestCheckFailsOnceTheSessionEnded: Check answers at once, by a ping,
// that the lease is lost once its session was ended on the server (long
// before the pinger's next tick), and Lost is closed.
func TestCheckFailsOnceTheSessionEnded(t *testing.T) {
	pg := stack.StartPostgres(t)
	e, err := ha.New(ha.Config{Conn: postgres.ConnSettings{URL: pg.URL()}, Key: "check", Keepalive: time.Minute, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lease, err := e.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	if err := lease.Check(ctx); err != nil || !lease.Valid() || lease.Doubt() != "" {
		t.Fatalf("a held lease: Check %v, Valid %v, Doubt %q", err, lease.Valid(), lease.Doubt())
	}
	pg.Exec(t, "postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chronicler-ha'")
	if err := lease.Check(ctx); !errors.Is(err, ha.ErrLost) {
		t.Fatalf("Check after the session ended = %v; want ErrLost", err)
	}
	select {
	case <-lease.Lost():
	default:
		t.Fatal("Lost is not closed after a failed Check")
	}
	if lease.Valid() || lease.Doubt() == "" {
		t.Errorf("a lost lease: Valid %v, Doubt %q", lease.Valid(), lease.Doubt())
	}
}

// TestStandbyEndsAFrozenHolder: a lock session that holds the lock as
// chronicler-ha and runs nothing for StaleAfter (an active instance that is
// frozen) is ended by a standby, which then holds the lock; a holder that
// is not chronicler-ha is left alone.
func TestStandbyEndsAFrozenHolder(t *testing.T) {
	pg := stack.StartPostgres(t)
	ctx := context.Background()
	hold := func(app string) *pgx.Conn {
		t.Helper()
		cfg, err := pgx.ParseConfig(pg.URL())
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["application_name"] = app
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", ha.LockID("frozen")); err != nil {
			t.Fatal(err)
		}
		return c
	}
	newElector := func() *ha.Elector {
		e, err := ha.New(ha.Config{Conn: postgres.ConnSettings{URL: pg.URL()}, Key: "frozen", Keepalive: 500 * time.Millisecond, Poll: 50 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	other := hold("someone-else")
	actx, cancel := context.WithTimeout(ctx, 4*time.Second)
	if _, err := newElector().Acquire(actx); err == nil {
		t.Fatal("the standby took a lock held by a session that is not chronicler-ha")
	}
	cancel()
	other.Close(ctx)

	frozen := hold(ha.ApplicationName)
	actx, cancel = context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	lease, err := newElector().Acquire(actx)
	if err != nil {
		t.Fatalf("the standby did not take over from a frozen holder: %v", err)
	}
	defer lease.Release()
	if err := frozen.Ping(ctx); err == nil {
		t.Error("the frozen holder's session still works: it was not ended")
	}
}
