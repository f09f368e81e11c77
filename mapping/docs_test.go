package mapping

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocTopics: every "## " section of README.md is a topic, reachable by
// its name and by a unique prefix; an unknown topic lists them.
func TestDocTopics(t *testing.T) {
	topics := DocTopics()
	want := []string{"rule-files", "capture-rules", "promotion-rules", "templates", "expressions", "functions", "unchanged-toast-values", "run-time-failures", "rule-tests", "checks-at-load"}
	names := map[string]bool{}
	for _, tp := range topics {
		names[tp.Name] = true
		got, err := Docs(tp.Name)
		if err != nil || !strings.HasPrefix(got, "## "+tp.Title+"\n") {
			t.Errorf("Docs(%q) = %.40q, %v", tp.Name, got, err)
		}
		if strings.Contains(got, "<!--") {
			t.Errorf("topic %s shows a marker comment", tp.Name)
		}
	}
	for _, w := range want {
		if !names[w] {
			t.Errorf("no topic %q (topics: %v)", w, names)
		}
	}
	if got, err := Docs("func"); err != nil || !strings.HasPrefix(got, "## Functions\n") {
		t.Errorf("Docs(func) = %.40q, %v", got, err)
	}
	if _, err := Docs("nope"); err == nil || !strings.Contains(err.Error(), "capture-rules") {
		t.Errorf("Docs(nope) error %v does not list the topics", err)
	}
	if _, err := Docs("r"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("Docs(r) error %v, want ambiguous", err)
	}
	all, _ := Docs("")
	for _, fn := range helperNames {
		if !strings.Contains(all, "`"+fn+"(") {
			t.Errorf("the reference does not document the helper %s()", fn)
		}
	}
}

// TestHintsNameRealTopics: every `chronicler rules docs TOPIC` that the
// rule packages print names a topic that exists, and no hint still sends
// users to a Go source file they may not have.
func TestHintsNameRealTopics(t *testing.T) {
	ref := regexp.MustCompile("chronicler rules docs ([a-z-]+)")
	seen := 0
	for _, glob := range []string{"*.go", "ruletest/*.go", "../cmd/chronicler/*.go"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ref.FindAllStringSubmatch(string(src), -1) {
				seen++
				if _, err := Docs(m[1]); err != nil {
					t.Errorf("%s: %s: %v", f, m[0], err)
				}
			}
			if lower := strings.ToLower(string(src)); strings.Contains(lower, "see mapping/doc.go") || strings.Contains(lower, "ruletest/doc.go for") {
				t.Errorf("%s sends users to a Go source file; name a `chronicler rules docs` topic", f)
			}
		}
	}
	if seen < 2 {
		t.Errorf("found %d references to `chronicler rules docs TOPIC`; want the hints of the checker and the test runner", seen)
	}
}
