package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metric reads one sample of chronicler's /metrics ("" labels: the
// unlabelled sample), -1 when absent.
func metric(t *testing.T, addr, name, labels string) float64 {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	sel := name
	if labels != "" {
		sel += "{" + labels + "}"
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sel) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// typesAfter runs n transfers, waits until they are captured, and counts
// the type of the last balance-changed rule event of every account stream.
func (e *env) typesAfter(ctx context.Context, n int) map[string]int {
	e.t.Helper()
	if err := e.workload(ctx, n, 1); err != nil {
		e.t.Fatal(err)
	}
	e.waitCaughtUp(60 * time.Second)
	db := e.store.client(e.t)
	types := map[string]int{}
	for aid := 1; aid <= accounts; aid++ {
		evs := readAll(e.t, db, fmt.Sprintf("acct-%d", aid))
		for i := len(evs) - 1; i >= 0; i-- {
			if strings.HasPrefix(evs[i].Type, "BalanceChanged") {
				types[evs[i].Type]++
				break
			}
		}
	}
	return types
}

// TestRuleReloadInRun: in a running `chronicler run`, a changed rule file
// takes effect for the transactions after it (the event type changes); a
// broken file is refused, counted, and the running rules keep mapping; a
// SIGHUP reloads (here with polling off).
func TestRuleReloadInRun(t *testing.T) {
	addr := freeAddr(t)
	su := transfers()
	su.extra = fmt.Sprintf("http:\n  addr: %q\n", addr)
	// The harness writes rules: paths; the reload settings come from the
	// environment (CHRONICLER_RULES_*), which the child inherits.
	e := newEnvWith(t, su)
	t.Setenv("CHRONICLER_RULES_RELOAD_INTERVAL", "200ms")
	ruleFile := filepath.Join(e.dir, "rules.yaml")
	e.startChronicler()
	e.waitLog("capture: streaming")
	ctx := context.Background()
	if got := e.typesAfter(ctx, 50); got["BalanceChanged"] == 0 || got["BalanceChangedV2"] != 0 {
		t.Fatalf("before the reload: last event types %v", got)
	}

	// A good change: applies to the transactions after it.
	v2 := strings.Replace(rules, "type: BalanceChanged", "type: BalanceChangedV2", 1)
	if err := os.WriteFile(ruleFile, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitLog("rules reloaded")
	if got := metric(t, addr, "chronicler_rules_reloads_total", `result="ok"`); got != 1 {
		t.Fatalf("reloads ok = %v, want 1", got)
	}
	before := e.typesAfter(ctx, 0)
	after := e.typesAfter(ctx, 600) // touches (nearly) every account
	e.requireLogged("capture rules swapped")
	if after["BalanceChangedV2"] <= before["BalanceChangedV2"] || after["BalanceChangedV2"] < 100 {
		t.Fatalf("after a good reload, last event types %v (before the workload: %v): the new type did not take over", after, before)
	}

	// A broken file: refused, counted, the V2 rules keep mapping.
	if err := os.WriteFile(ruleFile, []byte(strings.Replace(v2, "new.version", "new.no_such_column", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitLog("rule reload refused")
	if got := metric(t, addr, "chronicler_rules_reloads_total", `result="error"`); got != 1 {
		t.Fatalf("reloads error = %v, want 1", got)
	}
	e.requireLogged("rules.yaml:") // the refusal names the file (file:line:col)
	got := e.typesAfter(ctx, 600)
	if got["BalanceChanged"] > before["BalanceChanged"] || got["BalanceChangedV2"] < after["BalanceChangedV2"] {
		t.Fatalf("after a refused reload, last event types %v: the old (V2) rules did not keep mapping", got)
	}
	e.stopChronicler()

	// SIGHUP with polling off.
	t.Setenv("CHRONICLER_RULES_RELOAD", "false")
	if err := os.WriteFile(ruleFile, []byte(v2), 0o644); err != nil {
		t.Fatal(err)
	}
	e.startChronicler()
	e.waitLog("capture: streaming")
	v3 := strings.Replace(rules, "type: BalanceChanged", "type: BalanceChangedV3", 1)
	if err := os.WriteFile(ruleFile, []byte(v3), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = e.chron.Process.Signal(syscall.SIGHUP)
	e.waitLog("SIGHUP: reloading the rules")
	e.waitLog("rules reloaded")
	if got := e.typesAfter(ctx, 600); got["BalanceChangedV3"] < 100 {
		t.Fatalf("after SIGHUP, last event types %v: the V3 rules did not take over", got)
	}
	e.stopChronicler()
}
