package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// chaos runs the workload while kill() is called at random moments, at
// least `kills` times and until the workload is done, then waits for the
// slot to pass the last commit and verifies the store.
func chaos(t *testing.T, e *env, transfers, kills int, kill func()) {
	t.Helper()
	e.startChronicler()
	// The slot must exist (and the snapshot be done) before the workload:
	// what is committed before the slot exists is not captured.
	e.waitLog("capture: streaming")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- e.workload(ctx, transfers, 4) }()
	killed := 0
	var werr error
	finished := false
	for killed < kills || !finished {
		// Random moments: this is the chaos schedule, not a wait for a server.
		pause := time.Duration(200+rand.IntN(1300)) * time.Millisecond
		select {
		case werr = <-done:
			finished = true
			if werr != nil {
				t.Fatalf("workload: %v", werr)
			}
			if killed >= kills {
				continue
			}
		case <-time.After(pause):
		}
		if killed < kills {
			kill()
			killed++
		}
	}
	worked := time.Since(start)
	e.waitCaughtUp(60 * time.Second)
	t.Logf("figure: %d transfers (4 connections) in %s with %d kills; slot caught up %s after the start",
		transfers, worked.Round(time.Millisecond), killed, time.Since(start).Round(time.Millisecond))
	e.checkRunning()
	e.stopChronicler()
	e.verify(e.store.client(t))
	e.countLogged("replication slot is held by another process")
}

// TestChaosCaptureToStore: 20,000 transfers while chronicler is SIGKILLed
// at random moments at least 10 times and restarted; every stream must then
// match the database exactly once, in order (guarantees 1, 2, 3, 5). The
// store here does not serve BatchAppend (a KurrentDB before 21.10), so this
// test holds the AppendToStream path end to end; the other chaos tests run
// on BatchAppend, the default.
func TestChaosCaptureToStore(t *testing.T) {
	transfers, kills := 20000, 10
	if testing.Short() {
		transfers, kills = 4000, 5
	}
	e := newEnv(t, "-no-batch-append")
	chaos(t, e, transfers, kills, func() {
		e.checkRunning()
		e.killChronicler()
		e.startChronicler()
	})
	e.requireLogged("the store does not list BatchAppend")
	if b, err := os.ReadFile(e.logf.Name()); err != nil || strings.Contains(string(b), "appending through BatchAppend") {
		t.Fatalf("chronicler appended through BatchAppend on a store that does not list it (log read error: %v)", err)
	}
}

// TestChaosStoreKilled: as TestChaosCaptureToStore (20,000 transfers, 10
// kills), but the store process is SIGKILLed and restarted on its data
// directory; chronicler keeps running, retries, and the result is exact.
func TestChaosStoreKilled(t *testing.T) {
	transfers, kills := 20000, 10
	if testing.Short() {
		transfers, kills = 2000, 2
	}
	e := newEnv(t)
	n := 0
	chaos(t, e, transfers, kills, func() {
		e.checkRunning()
		e.store.kill()
		// The outage's length. The first is longer than the official
		// client's default discovery budget (10 attempts, 100 ms apart),
		// after which it used to close itself for good.
		outage := time.Duration(100+rand.IntN(700)) * time.Millisecond
		if n == 0 {
			outage = 2500 * time.Millisecond
		}
		n++
		time.Sleep(outage)
		e.store.start()
	})
	e.requireLogged("append failed; retrying") // the outages were felt, and survived
	e.requireLogged("appending through BatchAppend")
}

// TestChaosStoreUnavailable: as TestChaosCaptureToStore (20,000 transfers,
// 10 kills of chronicler), with the store answering 20% of writes
// Unavailable after committing them (the worst case for retries).
func TestChaosStoreUnavailable(t *testing.T) {
	transfers, kills := 20000, 10
	if testing.Short() {
		transfers, kills = 2000, 2
	}
	e := newEnv(t, "-unavailable-rate", "0.2", "-fail-after-commit")
	chaos(t, e, transfers, kills, func() {
		e.checkRunning()
		e.killChronicler()
		e.startChronicler()
	})
	e.requireLogged("append failed; retrying") // the injected errors were met, and survived
}

// TestForeignWriterStopsRun: another client appends to acct-1; the next
// append of chronicler to acct-1 must make `run` exit 1 with an error that
// names the stream.
func TestForeignWriterStopsRun(t *testing.T) {
	e := newEnv(t)
	e.startChronicler()
	e.waitLog("capture: streaming")
	if err := e.workload(context.Background(), 300, 2); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(60 * time.Second)
	db := e.store.client(t)
	if len(readAll(t, db, "acct-1")) == 0 {
		// Make sure the stream exists and is Chronicler's before the foreign write.
		e.pg.Exec(t, "app", "UPDATE accounts SET version = version + 1 WHERE id = 1; INSERT INTO history (aid, version, delta, note) SELECT 1, version, 0, 'ok' FROM accounts WHERE id = 1")
		e.waitCaughtUp(60 * time.Second)
	}
	appendForeign(t, db, "acct-1")
	e.pg.Exec(t, "app", "BEGIN; UPDATE accounts SET version = version + 1 WHERE id = 1; INSERT INTO history (aid, version, delta, note) SELECT 1, version, 0, 'ok' FROM accounts WHERE id = 1; COMMIT")
	select {
	case err := <-e.exited:
		e.chron = nil
		code := -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
		if code != 1 {
			t.Fatalf("chronicler exited with %v (code %d), want exit code 1", err, code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("chronicler did not stop within 60s of a foreign write to acct-1")
	}
	log := tailFile(e.logf.Name(), 5)
	if !strings.Contains(log, "error:") || !strings.Contains(log, "stream acct-1 ") {
		t.Fatalf("the exit error does not name stream acct-1:\n%s", log)
	}
}
