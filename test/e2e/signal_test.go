package e2e

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalExitsAtOnce: with the store gone, a graceful stop cannot
// finish today (the official client holds the appends in flight in its
// discovery loop, whatever their context says); a second SIGTERM must end
// the process at once with exit code 1. Should the first signal ever stop it
// (the gap fixed), the exit must be clean (code 0).
func TestSecondSignalExitsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.startChronicler()
	e.waitLog("capture: streaming")
	e.store.kill()
	if err := e.workload(context.Background(), 200, 2); err != nil {
		t.Fatal(err)
	}
	e.waitLog("append failed; retrying") // appends are stuck on the store
	_ = e.chron.Process.Signal(syscall.SIGTERM)
	e.waitLog("signal received; stopping")
	select {
	case err := <-e.exited:
		e.chron = nil
		if err != nil {
			t.Fatalf("first signal: %v, want a clean exit (or none until the second)", err)
		}
		t.Log("the first signal stopped chronicler cleanly during the store outage; the second was not needed")
		return
	case <-time.After(time.Second):
	}
	_ = e.chron.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.exited:
		e.chron = nil
		code := -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			code = ee.ExitCode()
		}
		if code != 1 {
			t.Fatalf("second signal: exit %v (code %d), want code 1", err, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("chronicler still running 10s after the second signal")
	}
}
