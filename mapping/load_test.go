package mapping

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestLoadBrokenReportsEverything loads a directory of deliberately broken
// files and checks that one Load call reports every expected problem, with
// its file:line:col, rule and message, and nothing else.
func TestLoadBrokenReportsEverything(t *testing.T) {
	_, err := Load([]string{"testdata/broken"}, Options{})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Load returned %T (%v), want *LoadError", err, err)
	}
	got := make([]string, len(le.Problems))
	for i, p := range le.Problems {
		got[i] = p.String()
	}
	golden := filepath.Join("testdata", "broken.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d", len(got), len(want))
	}
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("problem %d:\n got: %s\nwant: %s", i, g, w)
		}
	}
	// Every file of the directory contributed, in one run.
	files := map[string]bool{}
	for _, p := range le.Problems {
		files[filepath.Base(p.File)] = true
		if p.Line == 0 || p.Col == 0 {
			t.Errorf("problem without a position: %s", p)
		}
	}
	for _, f := range []string{"capture.yaml", "promote.yaml", "syntax.yaml", "toplevel.yaml"} {
		if !files[f] {
			t.Errorf("no problem reported for %s", f)
		}
	}
}

var shopCatalogue = Catalogue{
	"public.customers": {
		Columns:         []Column{{"id", "int8", true}, {"email", "text", true}, {"full_name", "text", true}, {"phone", "text", false}},
		ReplicaIdentity: "full", Key: []string{"id"},
	},
	"public.orders": {
		Columns:         []Column{{"id", "int8", true}, {"customer_id", "int8", true}, {"status", "text", true}, {"total_cents", "int8", true}},
		ReplicaIdentity: "default", Key: []string{"id"},
	},
}

// TestLoadChecksColumns: with a catalogue, column typos, type errors and old
// values the server will not send are load errors at their position.
func TestLoadChecksColumns(t *testing.T) {
	_, err := Load([]string{"testdata/columns/rules.yaml"}, Options{Catalogue: shopCatalogue})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Load returned %v, want *LoadError", err)
	}
	type key struct {
		line, col int
		rule      string
	}
	want := map[key]string{
		{8, 23, "typo"}:                       `unknown column "emial" in table public.customers`,
		{13, 43, "wrong-type"}:                "stream.id: invalid operation: + (mismatched types string and int64)",
		{20, 15, "old-without-full-identity"}: "old.status is not sent on update: table public.orders has REPLICA IDENTITY DEFAULT",
		{26, 12, "no-such-table"}:             "table public.custmers is not in the database",
		{37, 25, "glob-checks-every-table"}:   `unknown column "status" in table public.customers`, // globs check every matched table
	}
	got := map[key]string{}
	for _, p := range le.Problems {
		got[key{p.Line, p.Col, p.Rule}] = p.Message
	}
	for k, msg := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing problem at %d:%d for rule %q (got %v)", k.line, k.col, k.rule, le.Problems)
			continue
		}
		if msg != "" && g != msg {
			t.Errorf("%d:%d %s: message %q, want %q", k.line, k.col, k.rule, g, msg)
		}
	}
	if len(le.Problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(le.Problems), len(want), err)
	}
	for _, p := range le.Problems {
		if p.Rule == "typo" && !strings.Contains(p.Hint, "did you mean new.email") {
			t.Errorf("typo hint %q does not suggest the column", p.Hint)
		}
	}
}

// TestNullableColumnsCompareWithNull: a nullable column is typed any, so a
// comparison with a NULL (nil) value evaluates instead of failing at run
// time; a NOT NULL column keeps its type and its type errors at load.
func TestNullableColumnsCompareWithNull(t *testing.T) {
	src := `capture:
  - name: phone-changed
    table: public.customers
    on: [update]
    when: old.phone != new.phone
    stream: {category: customer, id: new.id}
    type: CustomerPhoneChanged
    data: {phone: new.phone}
`
	rs, err := LoadBytes("phone.yaml", []byte(src), Options{Catalogue: shopCatalogue})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		old, new any
		want     int
	}{{nil, "+1 555", 1}, {"+1 555", nil, 1}, {nil, nil, 0}, {"+1 555", "+1 555", 0}} {
		c := contract.Change{Op: contract.OpUpdate, Schema: "public", Table: "customers",
			Old: map[string]any{"id": int64(7), "phone": tc.old}, New: map[string]any{"id": int64(7), "phone": tc.new}}
		evs, err := rs.Capture(&c, nil)
		if err != nil {
			t.Fatalf("old %v new %v: %v", tc.old, tc.new, err)
		}
		if len(evs) != tc.want {
			t.Errorf("old %v new %v: %d events, want %d", tc.old, tc.new, len(evs), tc.want)
		}
	}
	bad := strings.Replace(src, "old.phone != new.phone", "new.email + 1 > 0", 1)
	if _, err := LoadBytes("phone.yaml", []byte(bad), Options{Catalogue: shopCatalogue}); err == nil {
		t.Fatal("a type error on a NOT NULL column was accepted")
	}
}

// TestLoadWithoutCatalogueAcceptsAnyColumn documents that columns are only
// checked when a catalogue is given.
func TestLoadWithoutCatalogueAcceptsAnyColumn(t *testing.T) {
	src := "capture:\n  - {name: a, table: t, on: [insert], stream: {category: t, id: new.id}, type: T, data: {x: new.no_such_column}}\n"
	if _, err := LoadBytes("a.yaml", []byte(src), Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadExamples(t *testing.T) {
	rs, err := Load([]string{"../deploy/examples/rules"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rs.CaptureRules()); n < 10 {
		t.Errorf("examples have %d capture rules", n)
	}
	in := rs.Interest()
	if !in.Transactional || in.All {
		t.Errorf("Interest = %+v, want transactional, not all", in)
	}
	if !contains(in.Types, "OrderInserted") || !contains(in.Types, "CustomerEmailChanged") {
		t.Errorf("Interest.Types = %v", in.Types)
	}
}

// TestLoadRejectsNondeterminism covers every clock or host-dependent form.
func TestLoadRejectsNondeterminism(t *testing.T) {
	for _, src := range []string{
		`now()`, `now().Year()`, `string(now())`, `date("2024-01-01")`,
		`date("2024-01-01 10:00", "2006-01-02 15:04", "Europe/Paris")`, `timezone("UTC")`,
		`map([1], now())`,
	} {
		t.Run(src, func(t *testing.T) {
			y := "capture:\n  - name: r\n    table: t\n    on: [insert]\n    stream: {category: t, id: new.id}\n    type: T\n    data: {x: '" + src + "'}\n"
			_, err := LoadBytes("r.yaml", []byte(y), Options{})
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("accepted %s (err %v)", src, err)
			}
			if le.Problems[0].Line != 7 {
				t.Errorf("problem at line %d, want 7: %s", le.Problems[0].Line, le.Problems[0])
			}
		})
	}
	ok := "capture:\n  - {name: r, table: t, on: [insert], stream: {category: t, id: new.id}, type: T, data: {x: 'date(new.d, \"2006-01-02\")'}}\n"
	if _, err := LoadBytes("r.yaml", []byte(ok), Options{}); err != nil {
		t.Errorf("rejected date with a layout: %v", err)
	}
}

func TestLoadPaths(t *testing.T) {
	_, err := Load([]string{"testdata/does-not-exist"}, Options{})
	var le *LoadError
	if !errors.As(err, &le) || le.Problems[0].File != "testdata/does-not-exist" {
		t.Fatalf("missing path: %v", err)
	}
	empty := t.TempDir()
	_, err = Load([]string{empty}, Options{})
	if !errors.As(err, &le) || !strings.Contains(le.Problems[0].Message, "no rule files") {
		t.Fatalf("empty dir: %v", err)
	}
}
