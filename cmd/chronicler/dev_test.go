package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestDevRunsTheWholePipeline is the README's first command, shortened:
// `chronicler dev --run-for ... --summary json` must capture, store and
// publish (all above zero) with no error, on the embedded default servers.
func TestDevRunsTheWholePipeline(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"dev", "--run-for", "6s", "--summary", "json", "--rate", "40",
		"--rules", "../../deploy/examples/rules/shop", "--schema", "../../deploy/examples/shop/schema.sql"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("dev exited %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	var s devSummary
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &s); err != nil {
		t.Fatalf("the summary is not one JSON line: %v\n%s", err, stdout.String())
	}
	if s.Captured == 0 || s.Stored == 0 || s.Published == 0 || s.Errors != 0 {
		t.Fatalf("summary %+v; want captured, stored and published above zero and no errors\nstderr: %s", s, stderr.String())
	}
	t.Logf("figure: dev --run-for 6s: %+v", s)
}

func TestDevRejectsABadSummaryFormat(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"dev", "--summary", "xml"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d; want 2 (a usage error) naming --summary\n%s", code, stderr.String())
	}
	if !bytes.Contains(stderr.Bytes(), []byte("--summary")) {
		t.Fatalf("stderr does not name --summary: %s", stderr.String())
	}
}
