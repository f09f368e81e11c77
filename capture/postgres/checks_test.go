package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// findingsByCheck indexes findings by their Check.
func findingsByCheck(fs []Finding) map[string]Finding {
	m := make(map[string]Finding, len(fs))
	for _, f := range fs {
		m[f.Check] = f
	}
	return m
}

// TestCheckServer: on a server with room for one slot and one walsender,
// both taken, the server checks fail for the slot and walsender room (with
// transient NoRoomErrors and the settings to raise), pass for an existing
// slot, and fail a role without REPLICATION; a superuser passes. The
// findings read the real server (ReadServer, ReadSlot).
func TestCheckServer(t *testing.T) {
	t.Parallel()
	pg := startWithSlots(t, []stack.PostgresOption{stack.WithPostgresSetting("max_replication_slots", "1"),
		stack.WithPostgresSetting("max_wal_senders", "1")}, "taken")
	pg.Exec(t, "postgres", `CREATE ROLE plain LOGIN`)
	streamSlot(t, pg, "taken", "holder")
	ctx := t.Context()
	conn := connectAs(t, pg, "postgres")
	waitFor(t, 10*time.Second, "the walsender", func() bool { s, _ := conn.ReadServer(ctx); return s.WALSenders == 1 })

	srv, err := conn.ReadServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Role != "postgres" || !srv.Superuser || srv.Database != "postgres" || srv.WALLevel != "logical" || srv.MaxSlots != 1 || srv.MaxWALSenders != 1 || srv.VersionNum < 140000 {
		t.Fatalf("ReadServer = %+v", srv)
	}
	si, exists, err := conn.ReadSlot(ctx, "mine")
	if err != nil || exists {
		t.Fatal(exists, err)
	}
	got := findingsByCheck(CheckServer(srv, si, exists))
	for _, c := range []string{"version", "wal_level", "role postgres"} {
		if f := got[c]; f.Verdict != Pass || f.Err != nil {
			t.Errorf("%s: %+v; want pass", c, f)
		}
	}
	var room *NoRoomError
	if f := got["max_replication_slots"]; f.Verdict != Fail || !errors.As(f.Err, &room) || room.Setting != "max_replication_slots" || room.InUse != 1 ||
		!strings.Contains(f.Found, "1 of 1 in use; no room for slot mine") || !strings.Contains(f.Fix, "max_replication_slots = 2") || !transient(f.Err) {
		t.Errorf("max_replication_slots: %+v", f)
	}
	if f := got["max_wal_senders"]; f.Verdict != Fail || !errors.As(f.Err, &room) || room.Setting != "max_wal_senders" ||
		!strings.Contains(f.Found, "1 of 1 in use") || !strings.Contains(f.Fix, "max_wal_senders = 2") {
		t.Errorf("max_wal_senders: %+v", f)
	}
	// The slot that exists takes no new room.
	si, exists, _ = conn.ReadSlot(ctx, "taken")
	if f := findingsByCheck(CheckServer(srv, si, exists))["max_replication_slots"]; f.Verdict != Pass || !strings.Contains(f.Found, "slot taken among them") {
		t.Errorf("existing slot: %+v", f)
	}

	psrv, err := connectAs(t, pg, "plain").ReadServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pe *PrivilegeError
	if f := findingsByCheck(CheckServer(psrv, si, true))["role plain"]; f.Verdict != Fail || !errors.As(f.Err, &pe) || pe.Privilege != "REPLICATION" || f.Fix != `ALTER ROLE "plain" REPLICATION;` {
		t.Errorf("role plain: %+v", f)
	}
}

// TestCheckServerVersionAndWALLevel: a server older than 14 and a wal_level
// other than logical fail with their typed errors (the values are set
// here: no Postgres 13 is installed; TestSetupWALLevel reads a real one).
func TestCheckServerVersionAndWALLevel(t *testing.T) {
	srv := Server{Version: "13.11", VersionNum: 130011, WALLevel: "replica", Role: "r", Replication: true, MaxSlots: 10, MaxWALSenders: 10}
	got := findingsByCheck(CheckServer(srv, SlotInfo{Name: "s"}, false))
	var old *ServerTooOldError
	if f := got["version"]; f.Verdict != Fail || !errors.As(f.Err, &old) || old.Version != 13 || f.Found != "13.11" {
		t.Errorf("version: %+v", f)
	}
	var wl *WALLevelError
	if f := got["wal_level"]; f.Verdict != Fail || !errors.As(f.Err, &wl) || wl.Got != "replica" || transient(f.Err) {
		t.Errorf("wal_level: %+v", f)
	}
	if f := got["role r"]; f.Verdict != Pass || f.Found != "REPLICATION" {
		t.Errorf("role: %+v", f)
	}
}

// TestCheckTables: existence, SELECT, and the replica identity rules, on
// real tables: NOTHING and DEFAULT without a primary key fail (publishing
// them would break the application's UPDATEs and DELETEs), DEFAULT with a
// key, USING INDEX and FULL pass, and a table whose old values are read
// warns unless FULL.
func TestCheckTables(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE pk (id int PRIMARY KEY, v text); CREATE TABLE nokey (v text);
CREATE TABLE nothing (id int PRIMARY KEY); ALTER TABLE nothing REPLICA IDENTITY NOTHING;
CREATE TABLE idx (id int NOT NULL, CONSTRAINT idx_id UNIQUE (id)); ALTER TABLE idx REPLICA IDENTITY USING INDEX idx_id;
CREATE TABLE "Full" (v text); ALTER TABLE "Full" REPLICA IDENTITY FULL;
CREATE ROLE plain LOGIN; GRANT SELECT ON pk TO plain;`)
	ctx := t.Context()
	conn := connectAs(t, pg, "postgres")
	srv, err := conn.ReadServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := func(c *Conn, name string) Table {
		t.Helper()
		tb, err := c.ReadTable(ctx, name, false)
		if err != nil {
			t.Fatal(err)
		}
		return tb
	}
	var nf *TableNotFoundError
	if f := CheckTable(read(conn, "public.nope"), srv); f.Verdict != Fail || !errors.As(f.Err, &nf) || nf.Table != "public.nope" || f.Found != "does not exist in database postgres" {
		t.Errorf("missing table: %+v", f)
	}
	plain := connectAs(t, pg, "plain")
	psrv, _ := plain.ReadServer(ctx)
	var pe *PrivilegeError
	if f := CheckTable(read(plain, "public.nokey"), psrv); f.Verdict != Fail || !errors.As(f.Err, &pe) || pe.Table != "public.nokey" || f.Fix != `GRANT SELECT ON "public"."nokey" TO "plain";` {
		t.Errorf("unreadable table: %+v", f)
	}
	if tb := read(plain, "public.pk"); !tb.CanSelect || tb.Owned || CheckTable(tb, psrv).Verdict != Pass {
		t.Errorf("readable, not owned: %+v", tb)
	}

	cases := []struct {
		table   string
		readers []string
		verdict Verdict
		found   string
	}{
		{"public.pk", nil, Pass, "DEFAULT (primary key id)"},
		{"public.pk", []string{NeedOldValuesReason}, Warn, "DEFAULT (primary key id); but it is in postgres.need_old_values, which this identity does not send"},
		{"public.nokey", nil, Fail, "DEFAULT and no primary key"},
		{"public.nothing", nil, Fail, "NOTHING"},
		{"public.idx", nil, Pass, "USING INDEX idx_id"},
		{"public.Full", []string{"a rule"}, Pass, "FULL (old values of every column)"},
	}
	for _, tc := range cases {
		tb := read(conn, tc.table)
		f := CheckReplicaIdentity(tb, tc.readers)
		if f.Check != "replica identity "+tc.table || f.Verdict != tc.verdict || !strings.HasPrefix(f.Found, tc.found) {
			t.Errorf("%s (readers %v): %+v; want %v %q", tc.table, tc.readers, f, tc.verdict, tc.found)
		}
		var ri *ReplicaIdentityError
		if (tc.verdict == Fail) != errors.As(f.Err, &ri) || (ri != nil && ri.Table != tc.table) {
			t.Errorf("%s: Err = %v", tc.table, f.Err)
		}
		if tc.verdict != Pass && !strings.HasPrefix(f.Fix, `ALTER TABLE "public".`) {
			t.Errorf("%s: fix %q", tc.table, f.Fix)
		}
	}
}

// TestCheckPublication: the publication rules on real publications: an
// absent one is created when the role may (else the role's missing
// privilege fails), an existing one must publish exactly the tables and
// every operation, missing tables are added only with AddMissingTables.
func TestCheckPublication(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
CREATE PUBLICATION exact FOR TABLE a, b; CREATE PUBLICATION narrow FOR TABLE a; CREATE PUBLICATION wide FOR TABLE a, b;
CREATE PUBLICATION everything FOR ALL TABLES; CREATE PUBLICATION inserts FOR TABLE a, b WITH (publish = 'insert');
CREATE ROLE nocreate LOGIN; CREATE ROLE creator LOGIN; GRANT CREATE ON DATABASE postgres TO creator;`)
	ctx := t.Context()
	check := func(user, pub string, tables []string, add bool) PublicationPlan {
		t.Helper()
		c := connectAs(t, pg, user)
		srv, err := c.ReadServer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var existing []Table
		for _, name := range tables {
			tb, err := c.ReadTable(ctx, name, false)
			if err != nil {
				t.Fatal(err)
			}
			existing = append(existing, tb)
		}
		m, err := c.ComparePublication(ctx, pub, tables)
		if err != nil {
			t.Fatal(err)
		}
		return CheckPublication(PublicationCheck{Publication: pub, Tables: tables, AddMissingTables: add, Server: srv, Existing: existing}, m)
	}
	ab := []string{"public.a", "public.b"}
	// On Postgres 18 capture creates it sending STORED generated columns.
	with := ""
	if srv, err := connectAs(t, pg, "postgres").ReadServer(ctx); err != nil {
		t.Fatal(err)
	} else if srv.VersionNum >= 180000 {
		with = " WITH (publish_generated_columns = stored)"
	}

	if p := check("postgres", "absent", ab, false); !p.Create || p.Finding.Verdict != Pass || p.Finding.Found != "absent: chronicler run creates it FOR TABLE public.a, public.b"+with {
		t.Errorf("absent, superuser: %+v", p)
	}
	var ce *PublicationCreateError
	if p := check("nocreate", "absent", ab, false); p.Finding.Verdict != Fail || !errors.As(p.Finding.Err, &ce) || !ce.NoCreate ||
		p.Finding.Fix != `run as the tables' owner: CREATE PUBLICATION "absent" FOR TABLE "public"."a", "public"."b"`+with+`;` {
		t.Errorf("absent, no CREATE: %+v", p)
	}
	if p := check("creator", "absent", ab, false); p.Finding.Verdict != Fail || !errors.As(p.Finding.Err, &ce) || ce.NoCreate || len(ce.NotOwned) != 2 {
		t.Errorf("absent, tables not owned: %+v", p)
	}
	if p := check("postgres", "exact", ab, false); p.Create || p.Add != nil || p.Finding.Verdict != Pass || p.Finding.Found != "publishes public.a, public.b" {
		t.Errorf("exact: %+v", p)
	}
	var me *PublicationMismatchError
	if p := check("postgres", "everything", ab, true); p.Finding.Verdict != Fail || !errors.As(p.Finding.Err, &me) || !me.AllTables {
		t.Errorf("all tables: %+v", p)
	}
	if p := check("postgres", "wide", []string{"public.a"}, true); p.Finding.Verdict != Fail || !errors.As(p.Finding.Err, &me) || len(me.Extra) != 1 ||
		!strings.Contains(p.Finding.Fix, `ALTER PUBLICATION "wide" DROP TABLE "public"."b";`) {
		t.Errorf("extra table: %+v", p)
	}
	if p := check("postgres", "inserts", ab, false); p.Finding.Verdict != Fail || !errors.As(p.Finding.Err, &me) || me.Operations != "insert" {
		t.Errorf("some operations: %+v", p)
	}
	if p := check("postgres", "narrow", ab, false); p.Finding.Verdict != Fail || p.Add != nil || !strings.Contains(p.Finding.Found, "lacks public.b") {
		t.Errorf("missing table: %+v", p)
	}
	if p := check("postgres", "narrow", ab, true); p.Finding.Verdict != Warn || p.Finding.Err != nil || len(p.Add) != 1 || p.Add[0] != "public.b" {
		t.Errorf("missing table with AddMissingTables: %+v", p)
	}
}
