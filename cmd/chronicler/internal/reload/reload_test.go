package reload_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/reload"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

const rulesV1 = `capture:
  - name: r
    table: public.t
    on: [insert]
    stream: {category: a, id: new.id}
    type: A
    data: {id: new.id}
`

const rulesV2 = `capture:
  - name: r
    table: public.t
    on: [insert]
    stream: {category: b, id: new.id}
    type: B
    data: {id: new.id}
`

const broken = `capture:
  - name: r
    table: public.t
    on: [insert]
    stream: {category: b, id: new.id +}
    type: B
`

type fixture struct {
	t       *testing.T
	reg     *prometheus.Registry
	hup     chan os.Signal
	mu      sync.Mutex
	applied []string // the type of rule r's event in each applied set
	loads   int
	// notReady is how many Loads, from the first, answer ErrNotReady (the
	// pipeline still starting).
	notReady int
}

func start(t *testing.T, paths []string, interval time.Duration) *fixture {
	t.Helper()
	return startNotReady(t, paths, interval, 0)
}

func startNotReady(t *testing.T, paths []string, interval time.Duration, notReady int) *fixture {
	t.Helper()
	f := &fixture{t: t, reg: prometheus.NewRegistry(), hup: make(chan os.Signal, 1), notReady: notReady}
	r, err := reload.New(reload.Config{
		Paths: paths, Interval: interval, Signals: f.hup, Registerer: f.reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Load: func(p []string) (*mapping.RuleSet, error) {
			f.mu.Lock()
			f.loads++
			early := f.loads <= f.notReady
			f.mu.Unlock()
			if early {
				return nil, fmt.Errorf("%w: capture is starting", reload.ErrNotReady)
			}
			return mapping.Load(p, mapping.Options{})
		},
		Apply: func(rs *mapping.RuleSet) error {
			ch := &contract.Change{Op: contract.OpInsert, Schema: "public", Table: "t", Key: []string{"id"}, New: map[string]any{"id": int64(1)}}
			out, err := rs.Capture(ch, nil)
			if err != nil || len(out) != 1 {
				return errors.New("applied set does not map the test change")
			}
			f.mu.Lock()
			f.applied = append(f.applied, out[0].Type)
			f.mu.Unlock()
			return nil
		},
	})
	runReloader(t, r, err)
	return f
}

func (f *fixture) count(result string) float64 {
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "chronicler_rules_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func (f *fixture) waitCount(result string, n float64) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.count(result) < n {
		if time.Now().After(deadline) {
			f.t.Fatalf("chronicler_rules_reloads_total{result=%q} = %v, want %v", result, f.count(result), n)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, with a deadline
	}
}

func (f *fixture) appliedTypes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.applied...)
}

// write replaces path's content atomically (a new file renamed over it):
// os.WriteFile truncates first, and a poll between the truncation and the
// write would see, and count, an empty rule file.
func write(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadOnChange: a changed file is checked and applied; a broken one
// is refused and counted once (the same content is not retried every
// poll) while the set in force stays; fixing it applies again.
func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rules.yaml")
	write(t, p, rulesV1)
	f := start(t, []string{dir}, 10*time.Millisecond)

	write(t, p, rulesV2)
	f.waitCount("ok", 1)
	if got := f.appliedTypes(); len(got) != 1 || got[0] != "B" {
		t.Fatalf("applied %v, want [B]", got)
	}

	write(t, p, broken)
	f.waitCount("error", 1)
	f.mu.Lock()
	loads := f.loads
	f.mu.Unlock()
	// Let the poller see the same broken content many times.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // twenty polls
	}
	f.mu.Lock()
	if f.loads != loads {
		t.Errorf("the broken content was loaded %d more times; want once", f.loads-loads)
	}
	f.mu.Unlock()
	if f.count("error") != 1 || f.count("ok") != 1 || len(f.appliedTypes()) != 1 {
		t.Fatalf("after a broken file: ok %v, error %v, applied %v; want 1, 1, [B]", f.count("ok"), f.count("error"), f.appliedTypes())
	}

	write(t, p, rulesV1)
	f.waitCount("ok", 2)
	if got := f.appliedTypes(); len(got) != 2 || got[1] != "A" {
		t.Fatalf("applied %v, want [B A]", got)
	}
}

// TestNotReadyPostpones: a Load answering ErrNotReady (the pipeline still
// starting) is neither applied nor counted, and the changed content is
// tried again at the next poll.
func TestNotReadyPostpones(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rules.yaml")
	write(t, p, rulesV1)
	f := startNotReady(t, []string{dir}, 10*time.Millisecond, 1)
	write(t, p, rulesV2)
	f.waitCount("ok", 1)
	f.mu.Lock()
	loads := f.loads
	f.mu.Unlock()
	if loads != 2 || f.count("error") != 0 {
		t.Fatalf("loads %d, errors counted %v; want 2 loads (postponed, then applied) and no error", loads, f.count("error"))
	}
	if got := f.appliedTypes(); len(got) != 1 || got[0] != "B" {
		t.Fatalf("applied %v, want [B]", got)
	}
}

// TestSIGHUPReloads: with polling off, only a signal reloads, also when
// the content did not change.
func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rules.yaml")
	write(t, p, rulesV1)
	f := start(t, []string{p}, 0)
	write(t, p, rulesV2)
	f.hup <- syscall.SIGHUP
	f.waitCount("ok", 1)
	f.hup <- syscall.SIGHUP
	f.waitCount("ok", 2)
	if got := f.appliedTypes(); len(got) != 2 || got[0] != "B" || got[1] != "B" {
		t.Fatalf("applied %v, want [B B]", got)
	}
}

// TestConfigMapSwap: a Kubernetes ConfigMap volume swaps a symlinked
// directory atomically and the files keep old times; the content hash sees
// it.
func TestConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	for v, text := range map[string]string{"..v1": rulesV1, "..v2": rulesV2} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v, "rules.yaml"), text)
		old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(dir, v, "rules.yaml"), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "rules.yaml"), filepath.Join(dir, "rules.yaml")); err != nil {
		t.Fatal(err)
	}
	f := start(t, []string{dir}, 10*time.Millisecond)
	// The atomic swap: a new symlink renamed over ..data.
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	f.waitCount("ok", 1)
	if got := f.appliedTypes(); len(got) != 1 || got[0] != "B" {
		t.Fatalf("applied %v, want [B]", got)
	}
}

// TestHashCoversSchemaFiles: a change to a schema file beside the rules is a
// change of the rule set (a promotion rule's contract changed), seen by
// polling like a rule file's.
func TestHashCoversSchemaFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), rulesV1)
	if err := os.Mkdir(filepath.Join(dir, "schemas"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "schemas", "a.json"), `{"type": "object"}`)
	before, err := reload.Hash([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "schemas", "a.json"), `{"type": "object", "required": ["id"]}`)
	after, err := reload.Hash([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if before == after {
		t.Fatal("the hash did not change with the schema file")
	}
}

// TestAlsoFilesAndAppliedError: a change to an Also file (the
// configuration file) alone triggers a reload; an Apply that fails after
// swapping the set in (*AppliedError) is counted as an error, and its set
// is the one in force: the same content is not tried again by polling.
func TestAlsoFilesAndAppliedError(t *testing.T) {
	dir := t.TempDir()
	p, cfg := filepath.Join(dir, "rules.yaml"), filepath.Join(t.TempDir(), "chronicler.yaml")
	write(t, p, rulesV1)
	write(t, cfg, "postgres: {tables: [a]}\n")
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	applies, fail := 0, false
	r, err := reload.New(reload.Config{
		Paths: []string{dir}, Also: []string{cfg}, Interval: 10 * time.Millisecond, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Load:   func(p []string) (*mapping.RuleSet, error) { return mapping.Load(p, mapping.Options{}) },
		Apply: func(*mapping.RuleSet) error {
			mu.Lock()
			defer mu.Unlock()
			applies++
			if fail {
				return &reload.AppliedError{Err: errors.New("adding public.b failed")}
			}
			return nil
		},
	})
	runReloader(t, r, err)
	f := &fixture{t: t, reg: reg}

	write(t, cfg, "postgres: {tables: [a, b]}\n")
	f.waitCount("ok", 1)
	mu.Lock()
	fail = true
	mu.Unlock()
	write(t, cfg, "postgres: {tables: [a, b, c]}\n")
	f.waitCount("error", 1)
	time.Sleep(100 * time.Millisecond) // ten polls of the same content
	mu.Lock()
	defer mu.Unlock()
	if applies != 2 || f.count("ok") != 1 || f.count("error") != 1 {
		t.Fatalf("applies %d, ok %v, error %v; want 2, 1, 1 (the applied set is not tried again)", applies, f.count("ok"), f.count("error"))
	}
}

// runReloader runs r (made with error err) until the test ends.
func runReloader(t *testing.T, r *reload.Reloader, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}
