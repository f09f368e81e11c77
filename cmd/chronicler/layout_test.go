package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/chronicler-dev/chronicler"

// layer is a package's place in the dependency rule (README, Layout): an
// import may only point to a lower layer, or within a layer to the
// package's own subpackages (the Postgres owner's pgvalue).
var layers = []struct {
	name string
	rank int
	pkgs []string // import paths relative to the module; a trailing / is a prefix
}{
	{"contract", 0, []string{"mapping/contract", "capture/retry"}},
	{"rule language", 1, []string{"mapping", "mapping/ruletest"}},
	{"outside-system owners", 2, []string{"capture/postgres", "capture/pgvalue", "capture/store", "publish/kafka", "publish/kafka/registry"}},
	{"stages", 3, []string{"capture", "publish", "capture/internal/rsscheck"}},
	{"runtime parts", 4, []string{"cmd/chronicler/config", "cmd/chronicler/internal/ha", "cmd/chronicler/internal/reload", "cmd/chronicler/internal/opsserver"}},
	{"composition root", 5, []string{"cmd/chronicler/app", "cmd/chronicler/internal/preflight"}},
	{"command line", 6, []string{"cmd/chronicler"}},
}

// sameOwner lists imports within a layer that are one owner's own parts
// (the schema registry client is the Kafka owner's).
var sameOwner = map[[2]string]bool{
	{"capture/postgres", "capture/pgvalue"}:     true,
	{"mapping/ruletest", "mapping"}:             true,
	{"publish/kafka/registry", "publish/kafka"}: true,
}

func layerOf(pkg string) (name string, rank int, ok bool) {
	for _, l := range layers {
		for _, p := range l.pkgs {
			if pkg == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(pkg, p)) {
				return l.name, l.rank, true
			}
		}
	}
	return "", 0, false
}

// graph is package → the project packages it imports (paths relative to
// the module).
type graph map[string][]string

// violations checks g against the rule: every product package has a layer;
// arrows point down; no product package imports test/, except the dev
// entry point (package main built without the release tag, allowDev).
func violations(g graph, allowDev bool) []string {
	var bad []string
	for pkg, imps := range g {
		if strings.HasPrefix(pkg, "test/") {
			continue
		}
		from, rank, ok := layerOf(pkg)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s has no layer: add it to the rule (README, Layout) and to this test", pkg))
			continue
		}
		for _, imp := range imps {
			if strings.HasPrefix(imp, "test/") {
				if !(allowDev && pkg == "cmd/chronicler") {
					bad = append(bad, fmt.Sprintf("%s imports %s: product code never imports test/ (only `chronicler dev`, and not in the release build)", pkg, imp))
				}
				continue
			}
			to, irank, ok := layerOf(imp)
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s imports %s, which has no layer", pkg, imp))
			case irank > rank || (irank == rank && !sameOwner[[2]string{pkg, imp}]):
				bad = append(bad, fmt.Sprintf("%s (%s) imports %s (%s): arrows run from the command line down to the contract, never up or across", pkg, from, imp, to))
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// importGraph is the project's import graph as `go list` sees it with tags.
func importGraph(t *testing.T, tags string) graph {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", tags, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	g := graph{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module+"/")
		g[pkg] = nil
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module+"/") {
				g[pkg] = append(g[pkg], strings.TrimPrefix(imp, module+"/"))
			}
		}
	}
	return g
}

// TestImportGraph holds the dependency rule on the real import graph, with
// and without the release tag.
func TestImportGraph(t *testing.T) {
	for _, tags := range []string{"", "release"} {
		g := importGraph(t, tags)
		if len(g) < 10 {
			t.Fatalf("go list found %d packages", len(g))
		}
		for _, v := range violations(g, tags == "") {
			t.Errorf("tags %q: %s", tags, v)
		}
	}
}

// TestImportGraphCatchesForbiddenImports: the rule refuses an adapter
// importing a stage, the contract importing anything of the project, a
// stage importing the runtime, two owners importing each other, and
// product code importing test/ (also the CLI in the release build).
func TestImportGraphCatchesForbiddenImports(t *testing.T) {
	ok := graph{"mapping/contract": nil, "mapping": {"mapping/contract"}, "capture/store": {"mapping/contract"},
		"capture": {"capture/store", "mapping"}, "cmd/chronicler": {"test/stack", "capture"}}
	if v := violations(ok, true); len(v) > 0 {
		t.Fatalf("a graph that keeps the rule: %v", v)
	}
	for name, g := range map[string]graph{
		"adapter imports a stage":     {"capture/store": {"capture"}},
		"contract imports the rules":  {"mapping/contract": {"mapping"}},
		"stage imports the runtime":   {"publish": {"cmd/chronicler/app"}},
		"owner imports another owner": {"publish/kafka": {"capture/store"}},
		"stage imports test":          {"capture": {"test/kurrentdb"}},
		"unknown package":             {"capture/newthing": nil},
	} {
		if v := violations(g, true); len(v) == 0 {
			t.Errorf("%s: no violation found", name)
		}
	}
	if v := violations(graph{"cmd/chronicler": {"test/stack"}}, false); len(v) == 0 {
		t.Error("the release build's CLI importing test/: no violation found")
	}
	var buf bytes.Buffer
	fmt.Fprint(&buf, violations(graph{"capture/store": {"capture"}}, true))
	if !strings.Contains(buf.String(), "capture/store (outside-system owners) imports capture (stages)") {
		t.Errorf("the violation does not name both ends: %s", buf.String())
	}
}
