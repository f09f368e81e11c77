package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI("version")
	if code != 0 || !strings.HasPrefix(out, "chronicler dev (") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestUnknownCommandExits2(t *testing.T) {
	if code, _, _ := runCLI("bogus"); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

func TestRulesCheckExamples(t *testing.T) {
	code, out, errOut := runCLI("rules", "check", "../../deploy/examples/rules")
	if code != 0 || !strings.HasPrefix(out, "ok: 3 files") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// TestRulesCheckBroken: every golden problem is printed in one run, exit 1.
func TestRulesCheckBroken(t *testing.T) {
	code, _, errOut := runCLI("rules", "check", "../../mapping/testdata/broken")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	golden, err := os.ReadFile("../../mapping/testdata/broken.golden")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(golden)), "\n")
	for _, l := range lines {
		if !strings.Contains(errOut, strings.ReplaceAll(l, "testdata/", "../../mapping/testdata/")+"\n") {
			t.Errorf("missing from output: %s", l)
		}
	}
	if got := strings.Count(errOut, "\n") - 1; got != len(lines) {
		t.Errorf("printed %d problems, golden has %d:\n%s", got, len(lines), errOut)
	}
}

// TestRulesTest: the examples pass; changing one expected value in a copy
// makes the command fail with a diff naming the old and the new value.
func TestRulesTest(t *testing.T) {
	code, out, errOut := runCLI("rules", "test", "../../deploy/examples/rules")
	if code != 0 || !strings.Contains(out, " 0 failed") || strings.Contains(out, "FAIL") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}

	dir := t.TempDir()
	src := "../../deploy/examples/rules/shop"
	for _, f := range []string{"capture.yaml", "promote.yaml", "shop_test.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "shop_test.yaml" {
			n := strings.Count(string(b), "sku: PEN-7, quantity: 2")
			b = []byte(strings.Replace(string(b), "{sku: PEN-7, quantity: 2, priceCents: 500}\n", "{sku: PEN-7, quantity: 3, priceCents: 500}\n", 1))
			if n == 0 || !strings.Contains(string(b), "quantity: 3") {
				t.Fatal("test fixture changed; update this test")
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ = runCLI("rules", "test", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"FAIL ", "an order and its lines in one transaction become one OrderPlaced", "1 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The diff shows the expected value removed and the value got added.
	if !regexp.MustCompile(`(?m)^\s+- \s+"quantity": 3,\n\s+\+ \s+"quantity": 2,$`).MatchString(out) {
		t.Errorf("no diff of the changed quantity:\n%s", out)
	}
}

// TestEveryCommandHasHelpWithExamples: `--help` of every command (cobra's
// own completion and help aside) exits 0 and shows examples.
func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	var walk func(prefix []string, cmds []*cobra.Command)
	seen := 0
	walk = func(prefix []string, cmds []*cobra.Command) {
		for _, c := range cmds {
			if c.Name() == "completion" || c.Name() == "help" {
				continue
			}
			path := append(append([]string(nil), prefix...), c.Name())
			if c.HasSubCommands() {
				walk(path, c.Commands())
				continue
			}
			seen++
			code, out, _ := runCLI(append(path, "--help")...)
			if code != 0 || !strings.Contains(out, "Examples:") {
				t.Errorf("chronicler %s --help: exit %d, examples shown: %v", strings.Join(path, " "), code, strings.Contains(out, "Examples:"))
			}
		}
	}
	root := newRootCmd(io.Discard, io.Discard)
	walk(nil, root.Commands())
	if seen < 8 {
		t.Fatalf("only %d commands found", seen)
	}
}
