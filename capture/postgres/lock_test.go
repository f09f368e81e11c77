package postgres

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/test/stack"
	"github.com/jackc/pgx/v5"
)

// TestConnSettings: the one builder applies the password override, the
// application name and the keepalive settings; a bad URL is a ConfigError
// that does not quote the password.
func TestConnSettings(t *testing.T) {
	cfg, err := connConfig(ConnSettings{URL: "postgres://u:fromurl@db:5433/app?application_name=theirs", Password: "override",
		ApplicationName: "chronicler-x", Keepalive: 5 * time.Second}, map[string]string{"TimeZone": "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"application_name": "chronicler-x", "tcp_keepalives_idle": "5", "tcp_keepalives_interval": "3",
		"tcp_keepalives_count": "3", "tcp_user_timeout": "15000", "TimeZone": "UTC"}
	for k, v := range want {
		if cfg.RuntimeParams[k] != v {
			t.Errorf("%s = %q; want %q", k, cfg.RuntimeParams[k], v)
		}
	}
	if cfg.Password != "override" || cfg.User != "u" || targetOf(&cfg.Config) != "db:5433/app" {
		t.Errorf("password %q user %q target %q", cfg.Password, cfg.User, targetOf(&cfg.Config))
	}
	cfg, err = connConfig(ConnSettings{URL: "postgres://u@db1:5433,db2:5434/app?sslmode=prefer&target_session_attrs=read-write"}, nil)
	if err != nil || targetOf(&cfg.Config) != "db1:5433,db2:5434/app" {
		t.Errorf("multi-host URL: %v, target %q; want db1:5433,db2:5434/app", err, targetOf(&cfg.Config))
	}
	cfg, err = connConfig(ConnSettings{URL: "postgres://u:fromurl@db/app?application_name=theirs"}, nil)
	if err != nil || cfg.Password != "fromurl" || cfg.RuntimeParams["application_name"] != "theirs" || cfg.RuntimeParams["tcp_keepalives_idle"] != "" {
		t.Errorf("without overrides: %v, password %q, params %v", err, cfg.Password, cfg.RuntimeParams)
	}
	err = ConnSettings{URL: "postgres://u:s3cret@db:notaport/app"}.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "url" || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad URL: %v; want a ConfigError for url without the password", err)
	}
}

// TestConnectErrorNamesTheTarget: an unreachable server is a ConnectError
// naming host:port/database and user.
func TestConnectErrorNamesTheTarget(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := Connect(ctx, ConnSettings{URL: "postgres://who:pw@127.0.0.1:1/app?sslmode=disable&connect_timeout=2"})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Target != "127.0.0.1:1/app" || ce.User != "who" || strings.Contains(err.Error(), "pw@") {
		t.Fatalf("Connect = %v; want a ConnectError for 127.0.0.1:1/app as who", err)
	}
	// The Source's connections fail the same way (one dialer), and a
	// reconnect is worth it.
	src, err := New(Config{URL: "postgres://who:pw@127.0.0.1:1/app?sslmode=disable&connect_timeout=2", Slot: "s", Publication: "p", Tables: []string{"t"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() error{
		"connect":            func() error { _, err := src.connect(ctx); return err },
		"connectReplication": func() error { _, err := src.connectReplication(ctx); return err },
	} {
		err := open()
		if ce = nil; !errors.As(err, &ce) || ce.Target != "127.0.0.1:1/app" || ce.User != "who" || !transient(err) {
			t.Errorf("Source.%s = %v; want a transient ConnectError for 127.0.0.1:1/app as who", name, err)
		}
	}
}

// TestLockSession: one session holds an advisory lock, another cannot take
// it until it is unlocked; a session ended on the server fails its ping;
// TerminateSlotHolder ends only a capture session's walsender.
func TestLockSession(t *testing.T) {
	t.Parallel()
	pg := startWithSlots(t, nil, "mine", "theirs")
	ctx := t.Context()
	open := func() *LockSession {
		t.Helper()
		s, err := OpenLockSession(ctx, ConnSettings{URL: pg.URL(), ApplicationName: "lock-test", Keepalive: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	}
	a, b := open(), open()
	if got, err := a.TryLock(ctx, 42); err != nil || !got {
		t.Fatalf("a.TryLock = %v, %v; want the free lock", got, err)
	}
	if got, err := b.TryLock(ctx, 42); err != nil || got {
		t.Fatalf("b.TryLock = %v, %v; want refused while a holds it", got, err)
	}
	if got, err := b.TryLock(ctx, 43); err != nil || !got {
		t.Fatalf("b.TryLock(43) = %v, %v; another key is another lock", got, err)
	}
	if err := a.Unlock(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if got, err := b.TryLock(ctx, 42); err != nil || !got {
		t.Fatalf("b.TryLock after unlock = %v, %v", got, err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "postgres", "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42")
	waitFor(t, 10*time.Second, "b's ping to fail", func() bool { return b.Ping(ctx) != nil })

	if pid, ok, err := a.TerminateSlotHolder(ctx, "mine"); pid != 0 || ok || err != nil {
		t.Errorf("inactive slot: %d, %v, %v; want nothing to terminate", pid, ok, err)
	}
	if pid, ok, err := a.TerminateSlotHolder(ctx, "absent"); pid != 0 || ok || err != nil {
		t.Errorf("absent slot: %d, %v, %v", pid, ok, err)
	}
	capture := streamSlot(t, pg, "mine", CaptureApplicationName)
	other := streamSlot(t, pg, "theirs", "someone-else")
	conn := connectAs(t, pg, "postgres")
	for _, s := range []string{"mine", "theirs"} {
		waitFor(t, 10*time.Second, "slot "+s+" active", func() bool { si, _, _ := conn.ReadSlot(ctx, s); return si.Active })
	}
	if pid, ok, err := a.TerminateSlotHolder(ctx, "theirs"); pid != 0 || ok || err != nil {
		t.Errorf("slot held by another client: %d, %v, %v; want it left alone", pid, ok, err)
	}
	// Again: only the PID named, only while it is a capture session holding
	// the slot.
	if held, err := a.TerminateSlotHolderAgain(ctx, "mine", int32(capture.PID())+1); held || err != nil {
		t.Errorf("TerminateSlotHolderAgain with another PID: %v, %v; want nothing held, nothing signalled", held, err)
	}
	if held, err := a.TerminateSlotHolderAgain(ctx, "theirs", int32(other.PID())); held || err != nil {
		t.Errorf("TerminateSlotHolderAgain on another client's walsender: %v, %v; want it left alone", held, err)
	}
	if si, _, _ := conn.ReadSlot(ctx, "mine"); !si.Active || *si.ActivePID != int32(capture.PID()) {
		t.Fatalf("slot mine no longer held by the capture session: %+v", si)
	}
	if pid, ok, err := a.TerminateSlotHolder(ctx, "mine"); pid != int32(capture.PID()) || !ok || err != nil {
		t.Errorf("slot held by a capture session: %d, %v, %v; want pid %d terminated", pid, ok, err, capture.PID())
	}
	waitFor(t, 10*time.Second, "slot mine released", func() bool {
		held, err := a.TerminateSlotHolderAgain(ctx, "mine", int32(capture.PID()))
		return err == nil && !held
	})
	if si, _, _ := conn.ReadSlot(ctx, "mine"); si.Active {
		t.Errorf("TerminateSlotHolderAgain said the slot is free, but it is held: %+v", si)
	}
	if si, _, _ := conn.ReadSlot(ctx, "theirs"); !si.Active || *si.ActivePID != int32(other.PID()) {
		t.Errorf("the other client's walsender was touched: %+v", si)
	}
}

// TestSessionsHaveTimeouts: every normal session Chronicler opens to the
// legacy database runs with lock_timeout, statement_timeout and
// idle_in_transaction_session_timeout (the server's view, SHOW), a
// connection string's own value wins, and a replication connection has
// none of Chronicler's.
func TestSessionsHaveTimeouts(t *testing.T) {
	pg := stack.StartPostgres(t)
	ctx := t.Context()
	show := func(c *pgx.Conn, name string) string {
		t.Helper()
		var v string
		if err := c.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	cfg, err := connConfig(ConnSettings{URL: pg.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for name, want := range map[string]string{"lock_timeout": "5s", "statement_timeout": "5min", "idle_in_transaction_session_timeout": "10min"} {
		if got := show(c, name); got != want {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
	cfg, err = connConfig(ConnSettings{URL: pg.URL() + "&lock_timeout=2s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	if got := show(c2, "lock_timeout"); got != "2s" {
		t.Errorf("lock_timeout from the URL = %q; want 2s", got)
	}
	src, err := New(baseConfig(pg, "postgres", "t"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	repl, err := src.connectReplication(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer repl.Close(ctx)
	res, err := repl.Exec(ctx, "SHOW lock_timeout").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
		t.Fatalf("SHOW lock_timeout on the replication connection: %v", err)
	}
	if v := string(res[0].Rows[0][0]); v != "0" {
		t.Errorf("the replication connection runs with lock_timeout %q; want the server's default, 0", v)
	}
}
