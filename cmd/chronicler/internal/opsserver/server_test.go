package opsserver_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/opsserver"
)

type state struct {
	failed atomic.Pointer[error]
	ready  atomic.Bool
	body   atomic.Value
}

func serve(t *testing.T, pprof bool) (string, *state) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "chronicler_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	st := &state{}
	st.body.Store("standby")
	srv, err := opsserver.New(opsserver.Config{Addr: "127.0.0.1:0", PProf: pprof, Gatherer: reg,
		Health: func() error {
			if p := st.failed.Load(); p != nil {
				return *p
			}
			return nil
		},
		Ready: func() (bool, string) { return st.ready.Load(), st.body.Load().(string) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "http://" + srv.Addr(), st
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

// TestEndpoints: /metrics serves the registry, /healthz follows Health,
// /readyz follows Ready with its body, pprof only when enabled.
func TestEndpoints(t *testing.T) {
	base, st := serve(t, false)
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "chronicler_test_total 3") {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok" {
		t.Errorf("/healthz healthy: %d %q", code, body)
	}
	err := errors.New("capture: store: conflict on acct-1")
	st.failed.Store(&err)
	if code, body := get(t, base+"/healthz"); code != 503 || !strings.Contains(body, "acct-1") {
		t.Errorf("/healthz failed: %d %q, want 503 naming the error", code, body)
	}
	for _, tc := range []struct {
		ready bool
		body  string
		code  int
	}{{true, "standby", 200}, {true, "active", 200}, {false, "initial snapshot in progress", 503}} {
		st.ready.Store(tc.ready)
		st.body.Store(tc.body)
		if code, body := get(t, base+"/readyz"); code != tc.code || body != tc.body {
			t.Errorf("/readyz (%v, %q): %d %q", tc.ready, tc.body, code, body)
		}
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without pprof: %d, want 404", code)
	}
	pbase, _ := serve(t, true)
	if code, body := get(t, pbase+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with pprof: %d", code)
	}
}

// TestBusyAddress: a taken port is a *ListenError naming the address.
func TestBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = opsserver.New(opsserver.Config{Addr: ln.Addr().String(), Gatherer: prometheus.NewRegistry(),
		Health: func() error { return nil }, Ready: func() (bool, string) { return true, "" }})
	var le *opsserver.ListenError
	if !errors.As(err, &le) || le.Addr != ln.Addr().String() {
		t.Fatalf("New on a busy port: %v, want a *ListenError naming it", err)
	}
}
