package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// runOnce runs a Source until it returns or 20 s pass, and returns Run's error.
func runOnce(t *testing.T, cfg Config) error {
	t.Helper()
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sink := newMemSink()
	sink.src = src
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return src.Run(ctx, sink)
}

// TestSetupErrors checks that each missing prerequisite stops capture with
// its typed error carrying the specifics (role, table, PID, tables).
func TestSetupErrors(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `
CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE secret (id int PRIMARY KEY);
CREATE ROLE plain LOGIN; GRANT SELECT ON a TO plain;
CREATE ROLE repl LOGIN REPLICATION; GRANT SELECT ON a TO repl;
CREATE PUBLICATION wide FOR TABLE a, b;
CREATE PUBLICATION narrow FOR TABLE a;
CREATE PUBLICATION inserts_only FOR TABLE a WITH (publish = 'insert');`)
	url := func(user string) string {
		return "postgres://" + user + "@127.0.0.1:" + itoa(pg.Port) + "/postgres?sslmode=disable"
	}

	t.Run("no REPLICATION attribute", func(t *testing.T) {
		cfg := baseConfig(pg, "postgres", "a")
		cfg.URL = url("plain")
		var pe *PrivilegeError
		if err := runOnce(t, cfg); !errors.As(err, &pe) || pe.Role != "plain" || pe.Privilege != "REPLICATION" {
			t.Fatalf("Run = %v; want PrivilegeError REPLICATION for plain", err)
		}
	})
	t.Run("no SELECT and a missing table, both reported", func(t *testing.T) {
		cfg := baseConfig(pg, "postgres", "a", "secret", "nope")
		cfg.URL = url("repl")
		err := runOnce(t, cfg)
		var pe *PrivilegeError
		var nf *TableNotFoundError
		if !errors.As(err, &pe) || pe.Table != "public.secret" || !errors.As(err, &nf) || nf.Table != "public.nope" {
			t.Fatalf("Run = %v; want PrivilegeError on public.secret and TableNotFoundError public.nope", err)
		}
	})
	t.Run("publication with extra tables", func(t *testing.T) {
		cfg := baseConfig(pg, "postgres", "a")
		cfg.Publication = "wide"
		var me *PublicationMismatchError
		if err := runOnce(t, cfg); !errors.As(err, &me) || len(me.Extra) != 1 || me.Extra[0] != "public.b" {
			t.Fatalf("Run = %v; want PublicationMismatchError with extra public.b", err)
		}
	})
	t.Run("publication of some operations only", func(t *testing.T) {
		cfg := baseConfig(pg, "postgres", "a")
		cfg.Publication = "inserts_only"
		var me *PublicationMismatchError
		if err := runOnce(t, cfg); !errors.As(err, &me) || me.Operations != "insert" {
			t.Fatalf("Run = %v; want PublicationMismatchError for operations", err)
		}
	})
	t.Run("publication missing a table", func(t *testing.T) {
		cfg := baseConfig(pg, "postgres", "a", "b")
		cfg.Publication = "narrow"
		var me *PublicationMismatchError
		if err := runOnce(t, cfg); !errors.As(err, &me) || len(me.Missing) != 1 || me.Missing[0] != "public.b" {
			t.Fatalf("Run = %v; want PublicationMismatchError with missing public.b", err)
		}
		cfg.AddMissingTables = true
		cfg.Slot = "adds"
		cfg.SnapshotMode = SnapshotInitialOnly
		if err := runOnce(t, cfg); err != nil {
			t.Fatalf("with AddMissingTables: Run = %v", err)
		}
		var n int
		if err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'narrow'").Scan(&n); err != nil || n != 2 {
			t.Fatalf("narrow publishes %d tables (%v); want 2", n, err)
		}
	})
	t.Run("slot active in another process", func(t *testing.T) {
		conn, err := pgconn.Connect(t.Context(), pg.ReplicationURL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := pglogrepl.CreateReplicationSlot(t.Context(), conn, "held", "pgoutput", pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication}); err != nil {
			t.Fatal(err)
		}
		if err := pglogrepl.StartReplication(t.Context(), conn, "held", 0, pglogrepl.StartReplicationOptions{PluginArgs: []string{"proto_version '1'", "publication_names 'narrow'"}}); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(pg, "postgres", "a")
		cfg.Slot = "held"
		cfg.Publication = "inuse_pub"
		var ie *SlotInUseError
		if err := runOnce(t, cfg); !errors.As(err, &ie) || ie.PID != int(conn.PID()) {
			t.Fatalf("Run = %v; want SlotInUseError naming PID %d", err, conn.PID())
		}
	})
}

// TestSetupWALLevel checks the wal_level error on a cluster without logical decoding.
func TestSetupWALLevel(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t, stack.WithPostgresSetting("wal_level", "replica"))
	pg.Exec(t, "postgres", `CREATE TABLE a (id int PRIMARY KEY)`)
	var we *WALLevelError
	if err := runOnce(t, baseConfig(pg, "postgres", "a")); !errors.As(err, &we) || we.Got != "replica" {
		t.Fatalf("Run = %v; want WALLevelError replica", err)
	}
}

// TestSetupSlotLost invalidates a slot (max_slot_wal_keep_size exceeded,
// then a checkpoint) and checks capture refuses it with SlotLostError.
func TestSetupSlotLost(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t, stack.WithPostgresSetting("max_slot_wal_keep_size", "'1MB'"))
	pg.Exec(t, "postgres", `CREATE TABLE a (id int PRIMARY KEY)`)
	pg.Exec(t, "postgres", `SELECT pg_create_logical_replication_slot('lost', 'pgoutput')`)
	for range 4 {
		pg.Exec(t, "postgres", `CREATE TABLE IF NOT EXISTS filler AS SELECT g FROM generate_series(1, 1) g;
INSERT INTO filler SELECT g FROM generate_series(1, 100000) g; SELECT pg_switch_wal();`)
	}
	pg.Exec(t, "postgres", "CHECKPOINT")
	cfg := baseConfig(pg, "postgres", "a")
	cfg.Slot = "lost"
	cfg.SnapshotMode = SnapshotNever
	var le *SlotLostError
	if err := runOnce(t, cfg); !errors.As(err, &le) || le.Slot != "lost" {
		var status string
		_ = pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = 'lost'").Scan(&status)
		t.Fatalf("Run = %v (wal_status %q); want SlotLostError", err, status)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestCatalog checks the captured tables' columns, types and keys as mapping
// will read them.
func TestCatalog(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TYPE mood AS ENUM ('a'); CREATE TABLE c (k1 int, k2 text, v numeric(10,2) NOT NULL, m mood[], PRIMARY KEY (k2, k1))`)
	src, err := New(baseConfig(pg, "postgres", "c"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := src.Catalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Column{{Name: "k1", Type: "integer", Key: true, NotNull: true}, {Name: "k2", Type: "text", Key: true, NotNull: true},
		{Name: "v", Type: "numeric(10,2)", NotNull: true}, {Name: "m", Type: "mood[]"}}
	got := cat["public.c"]
	if len(got) != len(want) {
		t.Fatalf("Catalog = %+v", cat)
	}
	for i, w := range want {
		g := got[i]
		g.TypeOID = 0
		if g != w {
			t.Errorf("column %d = %+v; want %+v", i, g, w)
		}
	}
}
