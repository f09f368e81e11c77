package shipped

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/ruletest"
)

// root is the repository, from this package's directory.
const root = "../.."

// origin is where a piece of YAML comes from: a file of the repository and
// the line before its first line (0 for a whole file).
type origin struct {
	file   string // relative to root
	offset int
}

func (o origin) String() string {
	if o.offset == 0 {
		return o.file
	}
	return fmt.Sprintf("%s:%d", o.file, o.offset+1)
}

// ruleSet is what the product would load together: one directory of rule
// files, the rule files of one values file, or the rule blocks of one
// Markdown section.
type ruleSet struct {
	where   string            // for messages
	dir     string            // an existing directory (rule files on disk); "" for in-memory sets
	files   map[string][]byte // in-memory rule files by name
	tests   map[string][]byte // in-memory test files by name
	origins map[string]origin // in-memory file name → where it comes from
	refused bool              // must fail to load (an example of an error)
}

// found is everything the walk finds.
type found struct {
	sets []*ruleSet
	// yamlBlocks counts the YAML blocks seen in Markdown and doc.go (rules or not).
	yamlBlocks int
}

var skipDirs = map[string]string{
	"mapping/testdata/broken": "fixtures broken on purpose; mapping's own tests assert their problems",
}

func walk(t *testing.T) *found {
	t.Helper()
	f := &found{}
	ruleDirs := map[string][]string{} // dir → rule files in it
	testDirs := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "templates" || skipDirs[rel] != "") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(rel, ".yaml") || strings.HasSuffix(rel, ".yml"):
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			switch kind(src) {
			case "rules":
				ruleDirs[filepath.Dir(rel)] = append(ruleDirs[filepath.Dir(rel)], rel)
			case "tests":
				testDirs[filepath.Dir(rel)] = append(testDirs[filepath.Dir(rel)], rel)
			case "values":
				f.sets = append(f.sets, valuesSet(t, rel, src, 0))
			}
		case strings.HasSuffix(rel, ".md"):
			f.markdown(t, rel)
		case filepath.Base(rel) == "doc.go":
			f.goDoc(t, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, files := range ruleDirs {
		f.sets = append(f.sets, &ruleSet{where: dir + " (" + strings.Join(files, ", ") + ")", dir: dir})
		delete(testDirs, dir)
	}
	for dir, files := range testDirs {
		t.Errorf("%s: rule tests (%s) with no rule files beside them", dir, strings.Join(files, ", "))
	}
	slices.SortFunc(f.sets, func(a, b *ruleSet) int { return strings.Compare(a.where, b.where) })
	return f
}

// kind classifies YAML: "rules" (top level capture:/promote:), "tests" (a
// rule test file), "values" (holds rules.files somewhere) or "".
func kind(src []byte) string {
	var top map[string]any
	if err := yaml.Unmarshal(src, &top); err != nil || len(top) == 0 {
		return ""
	}
	rules := true
	for k := range top {
		if k != "capture" && k != "promote" {
			rules = false
		}
	}
	switch {
	case rules:
		return "rules"
	case len(top) == 1 && top["tests"] != nil:
		return "tests"
	case len(ruleFiles(top)) > 0:
		return "values"
	}
	return ""
}

// ruleFiles finds rules.files (a map of file name to content) at any depth
// of a values document: the chart's own values or a parent chart's.
func ruleFiles(m map[string]any) map[string]string {
	if r, ok := m["rules"].(map[string]any); ok {
		if files, ok := r["files"].(map[string]any); ok {
			out := map[string]string{}
			for k, v := range files {
				if s, ok := v.(string); ok {
					out[k] = s
				}
			}
			return out
		}
	}
	for _, v := range m {
		if sub, ok := v.(map[string]any); ok {
			if out := ruleFiles(sub); out != nil {
				return out
			}
		}
	}
	return nil
}

// valuesSet is the rule files of a values document, each placed at the
// line of its key in the file (offset: the document's line in the file).
func valuesSet(t *testing.T, rel string, src []byte, offset int) *ruleSet {
	var top map[string]any
	if err := yaml.Unmarshal(src, &top); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	s := &ruleSet{where: fmt.Sprintf("%s rules.files", origin{rel, offset}), files: map[string][]byte{}, origins: map[string]origin{}}
	lines := strings.Split(string(src), "\n")
	for name, content := range ruleFiles(top) {
		s.files[name] = []byte(content)
		o := origin{file: rel, offset: offset}
		key := regexp.MustCompile(`^\s+` + regexp.QuoteMeta(name) + `:\s*[|>]`)
		for i, l := range lines {
			if key.MatchString(l) {
				o.offset = offset + i + 1
				break
			}
		}
		s.origins[name] = o
	}
	return s
}

var fence = regexp.MustCompile("^( *)```(yaml|yml)\\s*$")

// markdown collects the rule, test and values blocks of one Markdown file.
func (f *found) markdown(t *testing.T, rel string) {
	file, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var section *ruleSet // rule blocks since the last heading
	var prev string      // the last non-empty line before a block
	sc := bufio.NewScanner(file)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			section = nil
		}
		m := fence.FindStringSubmatch(line)
		if m == nil {
			if strings.TrimSpace(line) != "" {
				prev = strings.TrimSpace(line)
			}
			continue
		}
		indent := m[1] // a block inside a list item is indented
		start := n
		var block strings.Builder
		for sc.Scan() {
			n++
			if strings.HasPrefix(strings.TrimSpace(sc.Text()), "```") {
				break
			}
			block.WriteString(strings.TrimPrefix(sc.Text(), indent) + "\n")
		}
		f.yamlBlocks++
		f.block(t, origin{rel, start}, []byte(block.String()), prev == "<!-- rules: refused -->", &section)
		prev = ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// block adds one YAML block found in documentation. section collects the
// rule blocks of the current section, which test blocks run against.
func (f *found) block(t *testing.T, o origin, src []byte, refused bool, section **ruleSet) {
	name := fmt.Sprintf("L%d.yaml", o.offset+1)
	if refused {
		f.sets = append(f.sets, &ruleSet{where: o.String() + " (refused example)", refused: true,
			files: map[string][]byte{name: src}, origins: map[string]origin{name: o}})
		return
	}
	switch kind(src) {
	case "rules":
		if *section == nil {
			*section = &ruleSet{where: o.String(), files: map[string][]byte{}, tests: map[string][]byte{}, origins: map[string]origin{}}
			f.sets = append(f.sets, *section)
		} else {
			(*section).where += ", " + o.String()
		}
		(*section).files[name] = src
		(*section).origins[name] = o
	case "tests":
		if *section == nil {
			t.Errorf("%s: a tests: block with no rule block before it in its section", o)
			return
		}
		test := strings.TrimSuffix(name, ".yaml") + "_test.yaml"
		(*section).tests[test] = src
		(*section).origins[test] = o
		(*section).where += ", tests " + o.String()
	case "values":
		f.sets = append(f.sets, valuesSet(t, o.file, src, o.offset))
	default:
		if strings.Contains(string(src), "capture:") || strings.Contains(string(src), "promote:") {
			t.Logf("%s: a YAML block naming capture:/promote: that is not a rule file (not checked)", o)
		}
	}
}

// goDoc collects the tab-indented YAML blocks of a package's documentation
// that start with capture:, promote: or tests:.
func (f *found) goDoc(t *testing.T, rel string) {
	src, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	var section *ruleSet
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "// # ") {
			section = nil
		}
		first, ok := strings.CutPrefix(lines[i], "//\t")
		if !ok || !(strings.HasPrefix(first, "capture:") || strings.HasPrefix(first, "promote:") || strings.HasPrefix(first, "tests:")) {
			continue
		}
		start := i
		var block strings.Builder
		for ; i < len(lines); i++ {
			l, ok := strings.CutPrefix(lines[i], "//\t")
			if !ok {
				if lines[i] != "//" {
					break
				}
				l = ""
			}
			block.WriteString(l + "\n")
		}
		f.yamlBlocks++
		f.block(t, origin{rel, start}, []byte(block.String()), false, &section)
	}
}

// check loads one set and runs its tests; the error names the shipping
// file and line of every problem.
func (s *ruleSet) check(t *testing.T) (rules, cases int, err error) {
	dir := s.dir
	if dir != "" {
		dir = filepath.Join(root, dir)
	} else {
		dir = t.TempDir()
		for name, src := range s.files {
			if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for name, src := range s.tests {
			if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	rs, err := mapping.Load([]string{dir}, mapping.Options{})
	if err != nil {
		return 0, 0, s.relocate(dir, err)
	}
	rules = len(rs.CaptureRules()) + len(rs.PromotionRules())
	tests, _ := mapping.TestFiles([]string{dir})
	if len(tests) == 0 {
		return rules, 0, nil
	}
	var out strings.Builder
	rep, err := ruletest.Run([]string{dir}, mapping.Options{}, &out)
	if err != nil {
		return rules, 0, s.relocate(dir, err)
	}
	if rep.Failed > 0 || rep.Passed == 0 {
		return rules, rep.Passed, fmt.Errorf("rule tests: %d passed, %d failed:\n%s", rep.Passed, rep.Failed, s.rename(dir, out.String()))
	}
	return rules, rep.Passed, nil
}

// relocate rewrites a load error's problems to the files and lines that
// ship the snippets.
func (s *ruleSet) relocate(dir string, err error) error {
	var le *mapping.LoadError
	if !errors.As(err, &le) {
		return err
	}
	lines := make([]string, len(le.Problems))
	for i, p := range le.Problems {
		if o, ok := s.origins[filepath.Base(p.File)]; ok && s.dir == "" {
			p.File = o.file
			if p.Line > 0 {
				p.Line += o.offset
			}
		} else if rel, err := filepath.Rel(root, p.File); err == nil {
			p.File = rel
		}
		lines[i] = p.String()
	}
	return errors.New(strings.Join(lines, "\n"))
}

func (s *ruleSet) rename(dir, text string) string {
	for name, o := range s.origins {
		re := regexp.MustCompile(regexp.QuoteMeta(filepath.Join(dir, name)) + `:(\d+)`)
		text = re.ReplaceAllStringFunc(text, func(m string) string {
			n, _ := strconv.Atoi(m[strings.LastIndexByte(m, ':')+1:])
			return fmt.Sprintf("%s:%d", o.file, o.offset+n)
		})
	}
	return text
}

// TestShippedRulesLoad: every rule file and rule snippet the repository
// ships loads with the product's checker, and every rule test it ships
// passes; an example marked refused is refused.
func TestShippedRulesLoad(t *testing.T) {
	f := walk(t)
	// The walk must find what the repository is known to ship, so a change
	// to the walk (or a moved file) cannot make this test check nothing.
	mustFind := []string{
		"deploy/examples/rules/shop", "deploy/examples/rules/pgbench",
		"test/bench/rules/bulk", "test/bench/rules/pgbench", "test/bench/rules/wide",
		"deploy/helm/chronicler/ci/sidecar-values.yaml", "deploy/helm/chronicler/ci/standalone-values.yaml",
		"deploy/testdata/legacy-app/values.yaml", "deploy/helm/chronicler/README.md",
		"mapping/README.md", "README.md",
	}
	for _, want := range mustFind {
		if !slices.ContainsFunc(f.sets, func(s *ruleSet) bool {
			return strings.HasPrefix(s.where, want+" ") || strings.HasPrefix(s.where, want+":")
		}) {
			t.Errorf("found no rules in %s", want)
		}
	}
	totalRules, totalCases := 0, 0
	for _, s := range f.sets {
		rules, cases, err := s.check(t)
		switch {
		case s.refused && err == nil:
			t.Errorf("%s: marked <!-- rules: refused -->, but it loads", s.where)
		case !s.refused && err != nil:
			t.Errorf("%s does not load or its tests fail:\n%v", s.where, err)
		case !s.refused && rules == 0:
			t.Errorf("%s: no rules", s.where)
		}
		totalRules += rules
		totalCases += cases
		t.Logf("%s: %d rules, %d test cases", s.where, rules, cases)
	}
	t.Logf("figure: %d rule sets (%d rules, %d rule test cases) from %d YAML blocks in docs and the files", len(f.sets), totalRules, totalCases, f.yamlBlocks)

	// The skipped fixtures are still broken (else they should be checked here).
	for dir, why := range skipDirs {
		files, err := mapping.RuleFiles([]string{filepath.Join(root, dir)})
		if err != nil || len(files) == 0 {
			t.Errorf("%s is skipped as broken (%s), but it holds no rule files (%v): drop it from skipDirs", dir, why, err)
		}
		for _, file := range files {
			if _, err := mapping.Load([]string{file}, mapping.Options{}); err == nil {
				t.Errorf("%s loads, but it is skipped as broken (%s)", file, why)
			}
		}
	}
}
