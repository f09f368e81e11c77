package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
