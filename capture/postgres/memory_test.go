package postgres

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestLargeTransactionMemory streams one 1,000,000-row transaction through
// a capture running in a child process (capture/internal/rsscheck, built
// without the race detector) and asserts the child's peak RSS (VmHWM from
// /proc) stays under 150 MB: the transaction is never held in memory.
func TestLargeTransactionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a child binary and streams 1,000,000 rows")
	}
	t.Parallel()
	const rows = 1_000_000
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE big (id bigint PRIMARY KEY, v text, n numeric)`)

	bin := filepath.Join(t.TempDir(), "rsscheck")
	build := exec.Command("go", "build", "-o", bin, "../internal/rsscheck")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building rsscheck: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-url", pg.DatabaseURL("postgres"), "-table", "public.big", "-changes", fmt.Sprint(rows))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("rsscheck did not start: %s", stderr.String())
	}
	waitForSlotActive(t, pg, "rss")
	start := time.Now()
	pg.Exec(t, "postgres", fmt.Sprintf(`INSERT INTO big SELECT g, repeat('x', 100), g * 1.5 FROM generate_series(1, %d) g`, rows))
	if !lines.Scan() {
		t.Fatalf("rsscheck ended without a result: %s", stderr.String())
	}
	var n, hwm int64
	if _, err := fmt.Sscanf(lines.Text(), "changes=%d vmhwm_kib=%d", &n, &hwm); err != nil {
		t.Fatalf("rsscheck said %q: %v", lines.Text(), err)
	}
	mb := float64(hwm) / 1024
	t.Logf("figure: 1,000,000-row transaction: %d changes through capture, peak RSS (VmHWM) %.1f MiB, %s from INSERT to last change", n, mb, time.Since(start).Round(time.Millisecond))
	if n != rows {
		t.Fatalf("capture received %d changes; want %d", n, rows)
	}
	if mb >= 150 {
		t.Fatalf("peak RSS %.1f MiB; want < 150", mb)
	}
}
