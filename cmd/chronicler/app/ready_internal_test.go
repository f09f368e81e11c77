package app

import (
	"errors"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/ha"
)

// TestReadinessStates: /readyz and /healthz answers for the states that do
// not need a running pipeline: starting, standby without a lock session,
// stopping, failed.
func TestReadinessStates(t *testing.T) {
	c := config.Defaults()
	r := &App{cfg: &c}
	check := func(name string, wantReady bool, wantBody string) {
		t.Helper()
		ok, body := r.Ready()
		if ok != wantReady || !strings.HasPrefix(body, wantBody) {
			t.Errorf("%s: ready %v %q, want %v %q...", name, ok, body, wantReady, wantBody)
		}
	}
	check("before the lock is tried", false, "starting")
	el, err := ha.New(ha.Config{Conn: postgres.ConnSettings{URL: "postgres://u@127.0.0.1:1/db"}, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	r.elector.Store(el)
	check("standby without a lock session", false, "standby: the HA lock session is not connected yet")
	r.active.Store(true)
	check("active, no part", true, "active")
	r.stopping.Store(true)
	check("stopping", false, "stopping")
	if r.Health() != nil {
		t.Error("healthz failed while stopping cleanly")
	}
	fail := errors.New("capture: store: conflict on acct-1")
	r.failed.Store(&fail)
	check("failed", false, "failed: capture: store: conflict on acct-1")
	if !errors.Is(r.Health(), fail) {
		t.Errorf("health %v, want the failure", r.Health())
	}
}

// TestLockKeyPerParts: both parts share the configured key; a single part
// gets its own, so a capture-only and a publish-only deployment of a slot
// are both active.
func TestLockKeyPerParts(t *testing.T) {
	c := config.Defaults()
	cfg := &c
	cfg.Postgres.Slot = "orders"
	for parts, want := range map[config.Parts]string{
		config.All:      "chronicler/orders",
		{Capture: true}: "chronicler/orders/capture",
		{Publish: true}: "chronicler/orders/publish",
	} {
		if got := (&App{cfg: cfg, parts: parts}).lockKey(); got != want {
			t.Errorf("lockKey(%+v) = %q, want %q", parts, got, want)
		}
	}
}
