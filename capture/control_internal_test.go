package capture

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping"
)

// TestLoadRulesRefusesTablesNotCaptured: the rule check of start and reload
// (loadRules) accepts rules whose tables are captured, refuses a glob that
// matches no captured table with a *RulesError naming it and the captured
// tables, and leaves an exact table that is not captured to mapping.Load's
// *mapping.LoadError (file:line:col).
func TestLoadRulesRefusesTablesNotCaptured(t *testing.T) {
	cat := mapping.Catalogue{
		"public.orders": {Columns: []mapping.Column{{Name: "id", Type: "int8", NotNull: true}}, Key: []string{"id"}},
		"public.items":  {Columns: []mapping.Column{{Name: "id", Type: "int8", NotNull: true}}, Key: []string{"id"}},
	}
	rule := func(table string) string {
		return "capture:\n  - name: r\n    table: " + table + "\n    on: [insert]\n    stream: {category: c, id: new.id}\n    type: T\n    data: {id: new.id}\n"
	}
	write := func(text string) []string {
		p := filepath.Join(t.TempDir(), "rules.yaml")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{p}
	}
	for _, table := range []string{"public.orders", "public.ord*"} {
		if _, err := loadRules(write(rule(table)), cat, false); err != nil {
			t.Errorf("table %s (captured): %v", table, err)
		}
	}
	_, err := loadRules(write(rule("public.customer_*")), cat, false)
	var re *RulesError
	if !errors.As(err, &re) || re.Pattern != "public.customer_*" || !reflect.DeepEqual(re.Tables, []string{"public.items", "public.orders"}) {
		t.Errorf("glob matching no captured table: %v; want a *RulesError naming public.customer_* and the captured tables, sorted", err)
	}
	_, err = loadRules(write(rule("public.customers")), cat, false)
	var le *mapping.LoadError
	if !errors.As(err, &le) || errors.As(err, &re) {
		t.Errorf("exact table not captured: %v; want mapping's *LoadError", err)
	}
}

// TestCaptureBeforeRun: a Capture whose Run has not wired its parts
// answers ErrNotRunning to LoadRules and SwapRules, and reports
// PhaseStarting.
func TestCaptureBeforeRun(t *testing.T) {
	c, err := New(Options{RulePaths: []string{"rules.yaml"}, StoreURL: "esdb://127.0.0.1:1?tls=false"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadRules([]string{"rules.yaml"}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("LoadRules before Run: %v; want ErrNotRunning", err)
	}
	if _, err := c.SwapRules(nil); !errors.Is(err, ErrNotRunning) {
		t.Errorf("SwapRules before Run: %v; want ErrNotRunning", err)
	}
	if st := c.Status(); st.Phase != postgres.PhaseStarting || st.LagBytes() != 0 {
		t.Errorf("Status before Run: %+v; want starting, no lag", st)
	}
}
