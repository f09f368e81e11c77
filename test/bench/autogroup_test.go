package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetAutogroup: -autogroup off turns an enabled switch off and restore
// turns it back on; a switch already off, or -autogroup keep, is left as it
// is; a switch that cannot be read is unknown.
func TestSetAutogroup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sched_autogroup_enabled")
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	write := func(v string) {
		if err := os.WriteFile(path, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1")
	state, restore := setAutogroup(path, "off")
	if got := read(); got != "0" || !strings.HasPrefix(state, "off for this run") {
		t.Fatalf("on, -autogroup off: switch %q, state %q; want 0 and off for this run", got, state)
	}
	restore()
	if got := read(); got != "1" {
		t.Fatalf("after restore: switch %q; want 1", got)
	}
	state, restore = setAutogroup(path, "keep")
	restore()
	if got := read(); got != "1" || !strings.HasPrefix(state, "on (-autogroup keep)") {
		t.Fatalf("on, -autogroup keep: switch %q, state %q; want 1 and on", got, state)
	}
	write("0")
	state, restore = setAutogroup(path, "off")
	restore()
	if got := read(); got != "0" || state != "off" {
		t.Fatalf("off, -autogroup off: switch %q, state %q; want 0 and off", got, state)
	}
	if state, _ := setAutogroup(filepath.Join(dir, "missing"), "off"); !strings.HasPrefix(state, "unknown") {
		t.Fatalf("no switch: state %q; want unknown", state)
	}
}
