//go:build !release

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/test/stack"
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

// TestDevTwiceOnAnExistingDatabase is `chronicler dev --pg-url URL --run-for
// ...` twice in a row on one database: both runs exit 0 (the second one
// does not trip on the first one's rows), and neither leaves a replication
// slot or a publication behind.
func TestDevTwiceOnAnExistingDatabase(t *testing.T) {
	pg := stack.StartPostgres(t)
	for i := range 2 {
		var stdout, stderr bytes.Buffer
		code := run([]string{"dev", "--pg-url", pg.URL(), "--run-for", "4s", "--summary", "json", "--rate", "40",
			"--rules", "../../deploy/examples/rules/shop", "--schema", "../../deploy/examples/shop/schema.sql"}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("run %d: dev exited %d\nstdout: %s\nstderr: %s", i+1, code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stderr.String(), "removed slot chronicler_dev") {
			t.Errorf("run %d: dev did not say it removed its slot:\n%s", i+1, stderr.String())
		}
		var slots, pubs int
		conn := pg.Connect(t, "postgres")
		if err := conn.QueryRow(context.Background(), "SELECT (SELECT count(*) FROM pg_replication_slots), (SELECT count(*) FROM pg_publication WHERE pubname = 'chronicler_dev')").Scan(&slots, &pubs); err != nil {
			t.Fatal(err)
		}
		if slots != 0 || pubs != 0 {
			t.Fatalf("run %d: %d replication slots and %d chronicler_dev publications left; want none (the example schema's own publication, chronicler, stays)", i+1, slots, pubs)
		}
	}
}
