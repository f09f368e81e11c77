package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/test/stack"
)

func TestRunNeedsConfig(t *testing.T) {
	if code, _, _ := runCLI("run"); code != 2 {
		t.Fatalf("run without --config: exit %d, want 2", code)
	}
	if code, _, _ := runCLI("run", "--config", "../../deploy/examples/chronicler.yaml", "--only", "store"); code != 2 {
		t.Fatalf("run --only store: exit %d, want 2", code)
	}
}

// TestRunInvalidConfigExits2: every problem printed with file:line:col.
func TestRunInvalidConfigExits2(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	src := "postgres:\n  url: postgres://u@127.0.0.1:1/db\n  slot: Bad\n  publication: p\n  tables: [t]\nstore:\n  url: esdb://127.0.0.1:1?tls=false\n  on_conflict: never\nrules:\n  paths: [nowhere]\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("run", "--config", cfg)
	if code != 2 {
		t.Fatalf("exit %d, want 2:\n%s", code, errOut)
	}
	for _, want := range []string{cfg + ":3:9: postgres.slot", cfg + ":8:16: store.on_conflict", cfg + ":10:11: rules.paths[0]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
}

// TestRunUnreachableDatabaseExits1: a valid config whose database refuses
// connections fails at start with exit 1 and says which database.
func TestRunUnreachableDatabaseExits1(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte("capture: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	src := "postgres:\n  url: postgres://u@127.0.0.1:1/db?connect_timeout=5\n  slot: s\n  publication: p\n  tables: [t]\nstore:\n  url: esdb://127.0.0.1:1?tls=false\nrules:\n  paths: [r.yaml]\nhttp:\n  addr: \"\"\nha:\n  enabled: false\n"
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("run", "--config", cfg, "--only", "capture")
	if code != 1 || !strings.Contains(errOut, "127.0.0.1") {
		t.Fatalf("exit %d, want 1 with an error naming the database:\n%s", code, errOut)
	}
}

// TestRunRefusesATableWithoutReplicaIdentity: with a table that has no
// primary key (and REPLICA IDENTITY DEFAULT) in postgres.tables and no
// publication yet, `run --only capture` exits non-zero naming the table and
// the fix, creates no publication and no slot, and the application's
// UPDATE of that table still succeeds afterwards. `run --dry-run` on a
// fixable database prints the statements and changes nothing.
func TestRunRefusesATableWithoutReplicaIdentity(t *testing.T) {
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE legacy_notes (note text); INSERT INTO legacy_notes VALUES ('a');
		CREATE TABLE accounts (id int PRIMARY KEY, v int); INSERT INTO accounts VALUES (1, 1);`)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("capture: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(table string) string {
		t.Helper()
		cfg := filepath.Join(dir, table+".yaml")
		y := fmt.Sprintf("postgres:\n  url: %q\n  slot: notes\n  publication: notes\n  tables: [public.%s]\nstore:\n  url: esdb://127.0.0.1:1?tls=false\nrules:\n  paths: [rules.yaml]\nhttp:\n  addr: \"\"\nha:\n  enabled: false\n", pg.URL(), table)
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	footprint := func() (pubs, slots int) {
		t.Helper()
		if err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT (SELECT count(*) FROM pg_publication), (SELECT count(*) FROM pg_replication_slots)").Scan(&pubs, &slots); err != nil {
			t.Fatal(err)
		}
		return pubs, slots
	}
	code, out, errOut := runCLI("run", "--only", "capture", "--config", write("legacy_notes"))
	if code == 0 || !strings.Contains(errOut, "public.legacy_notes") || !strings.Contains(errOut, "REPLICA IDENTITY FULL") {
		t.Fatalf("run with a table without a replica identity: exit %d, want non-zero naming the table and the fix\n%s%s", code, out, errOut)
	}
	if p, s := footprint(); p != 0 || s != 0 {
		t.Fatalf("a refused run left %d publications and %d slots", p, s)
	}
	pg.Exec(t, "postgres", "UPDATE legacy_notes SET note = 'b'") // the application's statement still works

	code, out, errOut = runCLI("run", "--only", "capture", "--dry-run", "--config", write("accounts"))
	if code != 0 || !strings.Contains(out, `CREATE PUBLICATION "notes" FOR TABLE "public"."accounts"`) || !strings.Contains(out, `CREATE_REPLICATION_SLOT "notes" LOGICAL pgoutput`) {
		t.Fatalf("run --dry-run: exit %d, want the statements it would run\n%s%s", code, out, errOut)
	}
	if p, s := footprint(); p != 0 || s != 0 {
		t.Fatalf("a dry run left %d publications and %d slots", p, s)
	}
}
