package postgres

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

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
		src, err := New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		sink := newMemSink()
		sink.src = src
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := src.Run(ctx, sink); err != nil {
			t.Fatalf("with AddMissingTables: Run = %v", err)
		}
		// The same warning check prints: the publication lacked the table.
		if w := src.Warnings(); !slices.ContainsFunc(w, func(s string) bool {
			return strings.HasPrefix(s, "publication narrow: lacks public.b")
		}) {
			t.Errorf("warnings %q; want the publication's, naming public.b", w)
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

// TestSetupRefusals: capture refuses, with typed errors naming the table
// or role, a table whose publication would make the application's UPDATEs
// and DELETEs fail (no replica identity), publishing nothing; and a
// publication the role may not create.
func TestSetupRefusals(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE nokey (v text);
CREATE ROLE repl LOGIN REPLICATION; GRANT SELECT ON a TO repl;`)
	url := func(user string) string {
		return "postgres://" + user + "@127.0.0.1:" + itoa(pg.Port) + "/postgres?sslmode=disable"
	}
	t.Run("table without a replica identity", func(t *testing.T) {
		cfg := baseConfig(pg, "postgres", "a", "nokey")
		cfg.Publication = "nokey_pub"
		var ri *ReplicaIdentityError
		if err := runOnce(t, cfg); !errors.As(err, &ri) || ri.Table != "public.nokey" || ri.Identity != "default" {
			t.Fatalf("Run = %v; want ReplicaIdentityError for public.nokey", err)
		}
		var n int
		if err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT count(*) FROM pg_publication WHERE pubname = 'nokey_pub'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d publications nokey_pub (%v): capture published a table it refused", n, err)
		}
	})
	t.Run("publication the role may not create", func(t *testing.T) {
		cfg := baseConfig(pg, "postgres", "a")
		cfg.URL = url("repl")
		cfg.Publication = "repl_pub"
		var ce *PublicationCreateError
		if err := runOnce(t, cfg); !errors.As(err, &ce) || ce.Role != "repl" || !ce.NoCreate {
			t.Fatalf("Run = %v; want PublicationCreateError (no CREATE) for repl", err)
		}
	})
}

// TestSetupWaitsForSlotRoom: with no room for the slot, Run does not give
// up (NoRoomError is transient): it retries until a slot is dropped, then
// creates its own and streams.
func TestSetupWaitsForSlotRoom(t *testing.T) {
	t.Parallel()
	pg := startWithSlots(t, []stack.PostgresOption{stack.WithPostgresSetting("max_replication_slots", "1")}, "other")
	cfg := baseConfig(pg, "postgres", "a")
	cfg.SnapshotMode = SnapshotNever
	r := startSource(t, cfg, newMemSink())
	waitFor(t, 30*time.Second, "two reconnects for want of a slot", func() bool { return testutilCounter(r.src.m.reconnects) >= 2 })
	if p := r.src.Phase(); p != PhaseStarting {
		t.Fatalf("phase %v without room for the slot; want starting", p)
	}
	pg.Exec(t, "postgres", `SELECT pg_drop_replication_slot('other')`)
	waitFor(t, 30*time.Second, "streaming once the slot has room", func() bool { return r.src.Phase() == PhaseStreaming })
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

// TestCatalog checks the captured tables' columns, type names (pg_type's,
// without modifiers: what mapping's catalogue types rules by), type OIDs,
// array element OIDs, keys and replica identity, as read from the database.
func TestCatalog(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TYPE mood AS ENUM ('a');
CREATE TABLE c (k1 int, k2 text, v numeric(10,2) NOT NULL, m mood[], i8 bigint, vc varchar(20), ts timestamp(3),
  tstz timestamptz, f8 double precision, ia integer[], ta text[], jb jsonb, e public.mood, PRIMARY KEY (k2, k1));
CREATE TABLE u (id int NOT NULL, CONSTRAINT u_id UNIQUE (id)); ALTER TABLE u REPLICA IDENTITY USING INDEX u_id;
CREATE TABLE f (id int PRIMARY KEY); ALTER TABLE f REPLICA IDENTITY FULL;`)
	var moodOID, moodArrOID uint32
	if err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT 'mood'::regtype::oid, '_mood'::regtype::oid").Scan(&moodOID, &moodArrOID); err != nil {
		t.Fatal(err)
	}
	src, err := New(baseConfig(pg, "postgres", "c", "u", "f"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := src.Catalog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Column{
		{Name: "k1", Type: "int4", TypeOID: pgtype.Int4OID, Key: true, NotNull: true},
		{Name: "k2", Type: "text", TypeOID: pgtype.TextOID, Key: true, NotNull: true},
		{Name: "v", Type: "numeric", TypeOID: pgtype.NumericOID, NotNull: true},
		{Name: "m", Type: "_mood", TypeOID: moodArrOID, ElemOID: moodOID},
		{Name: "i8", Type: "int8", TypeOID: pgtype.Int8OID},
		{Name: "vc", Type: "varchar", TypeOID: pgtype.VarcharOID},
		{Name: "ts", Type: "timestamp", TypeOID: pgtype.TimestampOID},
		{Name: "tstz", Type: "timestamptz", TypeOID: pgtype.TimestamptzOID},
		{Name: "f8", Type: "float8", TypeOID: pgtype.Float8OID},
		{Name: "ia", Type: "_int4", TypeOID: pgtype.Int4ArrayOID, ElemOID: pgtype.Int4OID},
		{Name: "ta", Type: "_text", TypeOID: pgtype.TextArrayOID, ElemOID: pgtype.TextOID},
		{Name: "jb", Type: "jsonb", TypeOID: pgtype.JSONBOID},
		{Name: "e", Type: "mood", TypeOID: moodOID},
	}
	c := cat["public.c"]
	if !reflect.DeepEqual(c.Columns, want) {
		t.Errorf("columns of public.c:\n got %+v\nwant %+v", c.Columns, want)
	}
	if c.Name != "public.c" || !c.Exists || !c.CanSelect || !c.Owned || c.ReplicaIdentity != "default" || !reflect.DeepEqual(c.Key(), []string{"k1", "k2"}) {
		t.Errorf("public.c = %+v (key %v); want an existing, readable, owned table, identity default, key [k1 k2]", c, c.Key())
	}
	if u := cat["public.u"]; u.ReplicaIdentity != "index" || u.IdentityIndex != "u_id" || u.Key() != nil {
		t.Errorf("public.u: identity %q index %q key %v; want index u_id, no key", u.ReplicaIdentity, u.IdentityIndex, u.Key())
	}
	if f := cat["public.f"]; f.ReplicaIdentity != "full" {
		t.Errorf("public.f: identity %q; want full", f.ReplicaIdentity)
	}
}
