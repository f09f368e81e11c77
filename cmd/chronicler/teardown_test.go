package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/ha"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestTeardownRemovesTheFootprint: teardown refuses while an instance holds
// the HA lock, shows the statements with --dry-run and without a
// confirmation changes nothing, and with --yes leaves pg_replication_slots
// and pg_publication without Chronicler's objects.
func TestTeardownRemovesTheFootprint(t *testing.T) {
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION chron_pub FOR TABLE t;`)
	pg.Exec(t, "postgres", `SELECT pg_create_logical_replication_slot('chron_slot', 'pgoutput')`)
	cfg := filepath.Join(t.TempDir(), "chronicler.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("postgres:\n  url: %q\n  slot: chron_slot\n  publication: chron_pub\n  tables: [public.t]\nstore:\n  url: esdb://127.0.0.1:1?tls=false\nrules:\n  paths: [.]\n", pg.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	left := func() (slots, pubs int) {
		t.Helper()
		if err := pg.Connect(t, "postgres").QueryRow(context.Background(),
			"SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'chron_slot'), (SELECT count(*) FROM pg_publication WHERE pubname = 'chron_pub')").Scan(&slots, &pubs); err != nil {
			t.Fatal(err)
		}
		return slots, pubs
	}

	lock := pg.Connect(t, "postgres")
	if _, err := lock.Exec(context.Background(), "SELECT pg_advisory_lock($1)", ha.LockID("chronicler/chron_slot/capture")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("teardown", "--config", cfg, "--yes")
	if code != 1 || !strings.Contains(errOut, "holds its HA lock") {
		t.Fatalf("teardown while an instance holds the lock: exit %d\n%s%s", code, out, errOut)
	}
	if s, p := left(); s != 1 || p != 1 {
		t.Fatalf("a refused teardown dropped something: %d slots, %d publications left", s, p)
	}
	lock.Close(context.Background())

	code, out, errOut = runCLI("teardown", "--config", cfg, "--dry-run")
	if code != 0 || !strings.Contains(out, `DROP PUBLICATION "chron_pub";`) || !strings.Contains(out, "pg_drop_replication_slot('chron_slot')") {
		t.Fatalf("--dry-run: exit %d, want the statements\n%s%s", code, out, errOut)
	}
	if code, _, errOut = runCLI("teardown", "--config", cfg); code != 1 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("teardown without a confirmation: exit %d, want 1 naming --yes\n%s", code, errOut)
	}
	if s, p := left(); s != 1 || p != 1 {
		t.Fatalf("--dry-run or an unconfirmed teardown dropped something: %d slots, %d publications left", s, p)
	}
	if code, out, errOut = runCLI("teardown", "--config", cfg, "--yes"); code != 0 {
		t.Fatalf("teardown --yes: exit %d\n%s%s", code, out, errOut)
	}
	if s, p := left(); s != 0 || p != 0 {
		t.Fatalf("after teardown --yes: %d slots, %d publications left; want none", s, p)
	}
	if code, out, _ = runCLI("teardown", "--config", cfg, "--yes"); code != 0 || !strings.Contains(out, "nothing to remove") {
		t.Fatalf("a second teardown: exit %d %q; want nothing to remove", code, out)
	}
}
