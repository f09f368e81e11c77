package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "..", "..", "deploy", "examples", "chronicler.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Postgres.Slot != "chronicler" || len(cfg.Postgres.Tables) != 4 || !strings.HasSuffix(cfg.Rules.Paths[0], filepath.Join("deploy", "examples", "rules", "pgbench")) {
		t.Fatalf("unexpected config: %+v", cfg)
	}
}

const valid = `postgres:
  url: postgres://u@localhost/db
  slot: s1
  publication: p1
  tables: [public.t]
store:
  url: esdb://localhost:2113?tls=false
rules:
  paths: [rules]
`

// TestEveryErrorIsReported breaks several settings at once and expects one
// *Error per setting, each with its path and, when in the file, its line.
func TestEveryErrorIsReported(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(filepath.Join(dir, "ok.yaml"), []byte(valid)); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	src := `postgres:
  url: postgres://u@localhost/db
  slot: Bad-Slot
  publication: p1
  tables: [public.t, "a.b.c"]
  snapshot: {mode: sometimes}
  status_interval: soon
store:
  url: http://nope
  on_conflict: ignore
rules:
  paths: [missing]
deadletter:
  on_error: shrug
`
	_, err := Parse(filepath.Join(dir, "bad.yaml"), []byte(src))
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	want := map[string]int{ // path → line
		"postgres.slot":            3,
		"postgres.tables[1]":       5,
		"postgres.snapshot.mode":   6,
		"postgres.status_interval": 7,
		"store.url":                9,
		"store.on_conflict":        10,
		"rules.paths[0]":           12,
		"deadletter.on_error":      14,
	}
	got := map[string]int{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("not a *config.Error: %T %v", e, e)
		}
		got[ce.Path] = ce.Line
	}
	for p, line := range want {
		if l, ok := got[p]; !ok {
			t.Errorf("no error for %s (got %v)", p, got)
		} else if l != line {
			t.Errorf("%s reported at line %d, want %d", p, l, line)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got errors for %v, want exactly %v", got, want)
	}
}

func TestMissingRequiredSettings(t *testing.T) {
	_, err := Parse("empty.yaml", []byte("log: {level: info}\n"))
	var paths []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		paths = append(paths, e.(*Error).Path)
	}
	for _, p := range []string{"postgres.url", "postgres.slot", "postgres.publication", "postgres.tables", "store.url", "rules.paths"} {
		found := false
		for _, q := range paths {
			found = found || q == p
		}
		if !found {
			t.Errorf("no error for missing %s (got %v)", p, paths)
		}
	}
}

func TestUnknownKeyIsRejected(t *testing.T) {
	if _, err := Parse("x.yaml", []byte(valid+"extra: 1\n")); err == nil {
		t.Fatal("unknown key accepted")
	}
}
