package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// slotConfirmed is the slot's confirmed_flush_lsn once its walsender has
// exited: the walsender handles the client's last status update after the
// client closed the connection, so a read right after chronicler's exit can
// see the position before it.
func (e *env) slotConfirmed() contract.LSN {
	e.t.Helper()
	conn := e.conn()
	defer conn.Close(context.Background())
	var s string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var active bool
		if err := conn.QueryRow(context.Background(), "SELECT active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active, &s); err != nil {
			e.t.Fatal(err)
		}
		if !active {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("slot %s still active 10s after chronicler exited", slot)
		}
		time.Sleep(20 * time.Millisecond)
	}
	l, err := contract.ParseLSN(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// lastMarker is the durable LSN of the last progress marker.
func (e *env) lastMarker() contract.LSN {
	e.t.Helper()
	p := readAll(e.t, e.store.client(e.t), "chronicler-progress-"+slot)
	if len(p) == 0 {
		return 0
	}
	l, err := contract.ParseLSN(fmt.Sprint(p[len(p)-1].Data["durableLsn"]))
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// TestGracefulStopUnderLoad: SIGTERM while transfers are being captured:
// chronicler stops taking changes, stores and confirms what it took, and
// exits 0 within the grace. Then the slot's confirmed position covers the
// last progress marker (what is durable was confirmed) and no transaction
// was confirmed without being stored: after a restart that captures the
// rest, the store matches the database exactly.
func TestGracefulStopUnderLoad(t *testing.T) {
	su := transfers()
	su.extra = "shutdown:\n  grace: 20s\n"
	e := newEnvWith(t, su)
	e.startChronicler()
	e.waitLog("capture: streaming")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	work := make(chan error, 1)
	go func() { work <- e.workload(ctx, 4000, 2) }()
	e.waitLog("rules loaded")
	time.Sleep(time.Second) // let it capture under load (chaos timing, not a wait for a server)
	_ = e.chron.Process.Signal(syscall.SIGTERM)
	began := time.Now()
	select {
	case err := <-e.exited:
		e.chron = nil
		if err != nil {
			t.Fatalf("SIGTERM under load: %v, want exit 0\n%s", err, tailFile(e.logf.Name(), 30))
		}
	case <-time.After(40 * time.Second):
		t.Fatal("chronicler did not stop within 40s of SIGTERM (grace 20s)")
	}
	t.Logf("figure: graceful stop under load took %s", time.Since(began).Round(time.Millisecond))
	e.requireLogged("graceful stop: capture drained")
	marker, confirmed := e.lastMarker(), e.slotConfirmed()
	if marker == 0 || confirmed < marker {
		t.Fatalf("after a graceful stop the slot confirmed %s, below the last progress marker %s: durable transactions were not confirmed", confirmed, marker)
	}
	t.Logf("slot confirmed_flush_lsn %s, last progress marker %s", confirmed, marker)
	if err := <-work; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	e.startChronicler()
	e.waitCaughtUp(90 * time.Second)
	e.stopChronicler()
	e.verify(e.store.client(t))
}

// TestGracefulStopDuringStoreOutage: with the store gone and appends stuck,
// one SIGTERM ends chronicler within shutdown.grace (plus a small margin)
// with exit code 1, saying what was left; after the store returns, a
// restart captures everything: nothing was lost.
func TestGracefulStopDuringStoreOutage(t *testing.T) {
	su := transfers()
	su.extra = "shutdown:\n  grace: 3s\n"
	e := newEnvWith(t, su)
	e.startChronicler()
	e.waitLog("capture: streaming")
	e.store.kill()
	if err := e.workload(context.Background(), 200, 2); err != nil {
		t.Fatal(err)
	}
	e.waitLog("append failed; retrying")
	_ = e.chron.Process.Signal(syscall.SIGTERM)
	began := time.Now()
	select {
	case err := <-e.exited:
		e.chron = nil
		code := -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != 1 {
			t.Fatalf("SIGTERM during a store outage: %v, want exit code 1 (grace passed)", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("chronicler still running 20s after SIGTERM with shutdown.grace 3s: the stop hangs on the store")
	}
	t.Logf("figure: stop during a store outage took %s (grace 3s)", time.Since(began).Round(time.Millisecond))
	e.requireLogged("grace period over")
	e.store.start()
	e.startChronicler()
	e.waitCaughtUp(90 * time.Second)
	e.stopChronicler()
	e.verify(e.store.client(t))
}
