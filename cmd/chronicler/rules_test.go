package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesCheckCountsInEnglish: one problem is "1 problem", one file "1
// file" (not "1 problems", "1 files").
func TestRulesCheckCountsInEnglish(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("capture:\n  - name: r\n    table: t\n    on: [insert]\n    stream: {category: 'cust/omer', id: new.id}\n    type: T\n    data: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI("rules", "check", bad)
	if code != 1 || !strings.HasSuffix(errOut, "\n1 problem\n") {
		t.Fatalf("exit %d, want 1 and a last line \"1 problem\":\n%s", code, errOut)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("capture:\n  - name: r\n    table: t\n    on: [insert]\n    stream: {category: customer, id: new.id}\n    type: T\n    data: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("rules", "check", good)
	if code != 0 || out != "ok: 1 file, 1 capture rule, 0 promotion rules\n" {
		t.Fatalf("exit %d: %q %s", code, out, errOut)
	}
}

// TestRulesDocs: the binary prints the reference and each topic; an unknown
// topic is a usage error listing the topics.
func TestRulesDocs(t *testing.T) {
	code, out, _ := runCLI("rules", "docs")
	if code != 0 || !strings.HasPrefix(out, "# Chronicler rule language\n") || !strings.Contains(out, "## Functions\n") {
		t.Fatalf("exit %d, output starts %.60q", code, out)
	}
	code, out, _ = runCLI("rules", "docs", "functions")
	if code != 0 || !strings.HasPrefix(out, "## Functions\n") || strings.Contains(out, "## Rule tests") {
		t.Fatalf("exit %d, output starts %.60q", code, out)
	}
	code, _, errOut := runCLI("rules", "docs", "no-such-topic")
	if code != 2 || !strings.Contains(errOut, "rule-tests") {
		t.Fatalf("exit %d, %q: want 2 and the list of topics", code, errOut)
	}
}
