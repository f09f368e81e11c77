package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// terminateLockSession ends the active instance's HA lock session on the
// server and returns when it did.
func (e *env) terminateLockSession() {
	e.t.Helper()
	conn := e.conn()
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(),
		"SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND s.application_name = 'chronicler-ha'").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	if n != 1 {
		e.t.Fatalf("terminated %d lock sessions, want 1 (the active instance's)", n)
	}
}

// captureWalsender is the pid and flush position of the capture walsender
// (0 when none streams).
func (e *env) captureWalsender(ctx context.Context) (int32, contract.LSN) {
	conn := e.conn()
	defer conn.Close(context.Background())
	var pid int32
	var flush *string
	err := conn.QueryRow(ctx, "SELECT pid, flush_lsn::text FROM pg_stat_replication WHERE application_name = 'chronicler-capture'").Scan(&pid, &flush)
	if err != nil || flush == nil {
		return 0, 0
	}
	l, _ := contract.ParseLSN(*flush)
	return pid, l
}

// watchOld samples, until stop, the old walsender's flush position (a
// confirm the old instance sent) and the old instance's /readyz, and
// reports each violation: a flush position beyond base, or "active".
func (e *env) watchOld(in *instance, pid int32, base contract.LSN, stop <-chan struct{}) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var bad []string
		conn := e.conn()
		defer conn.Close(context.Background())
		for {
			select {
			case <-stop:
				out <- bad
				return
			default:
			}
			var flush *string
			if err := conn.QueryRow(context.Background(), "SELECT flush_lsn::text FROM pg_stat_replication WHERE pid = $1", pid).Scan(&flush); err == nil && flush != nil {
				if l, _ := contract.ParseLSN(*flush); l > base {
					bad = append(bad, fmt.Sprintf("the old walsender %d confirmed %s after the lock session ended (at %s then)", pid, l, base))
				}
			}
			if code, body := in.readyz(); code == 200 && body == "active" {
				bad = append(bad, "the old instance's /readyz said active after its lock session ended")
			}
			time.Sleep(5 * time.Millisecond) // sampling interval
		}
	}()
	return out
}

// TestHALockSessionEndedTenTimes: the active instance's lock session is
// terminated ten times under load. After each termination no confirmation
// from the old instance reaches Postgres (its walsender's flush position
// stays put until the new active instance ends it), its /readyz never says
// active again, it exits 1, and the standby takes over; the store and
// Kafka hold every change exactly once, in order.
func TestHALockSessionEndedTenTimes(t *testing.T) {
	k := stack.StartKafka(t)
	e := newEnv(t)
	n := fmt.Sprintf("hawin-%d", time.Now().UnixNano())
	cfg := writeFullConfig(t, e, k, n)
	insts := []*instance{e.newInstance("a"), e.newInstance("b")}
	e.startInstance(insts[0], cfg)
	e.waitRole(insts[0], "active", 60*time.Second)
	e.startInstance(insts[1], cfg)
	e.waitRole(insts[1], "standby", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work, stopWork := e.loadInRounds(ctx)
	active, standby := insts[0], insts[1]
	for round := range 10 {
		time.Sleep(800 * time.Millisecond) // under load for a moment (chaos timing)
		pid, _ := e.captureWalsender(ctx)
		if pid == 0 {
			t.Fatalf("round %d: no capture walsender streams", round+1)
		}
		e.terminateLockSession()
		// A status update sent before the termination may still be read
		// by the walsender just after it: the base is taken a moment later.
		time.Sleep(20 * time.Millisecond)
		_, base := e.captureWalsender(ctx)
		stop := make(chan struct{})
		bad := e.watchOld(active, pid, base, stop)
		active.waitExit1(t, 15*time.Second, fmt.Sprintf("after its lock session ended (round %d)", round+1))
		e.waitRole(standby, "active", 15*time.Second)
		close(stop)
		for _, v := range <-bad {
			t.Errorf("round %d: %s", round+1, v)
		}
		e.startInstance(active, cfg)
		e.waitRole(active, "standby", 30*time.Second)
		active, standby = standby, active
	}
	stopWork()
	if err := <-work; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(90 * time.Second)
	e.verify(e.store.client(t))
	checkKafka(t, e, k, "balances-"+n, "moves-"+n)
	for _, in := range insts {
		in.stop(t)
	}
}

// TestHAFrozenActiveIsReplaced: the active instance is SIGSTOPped for 60s
// under load. The standby ends its stale lock session and is active within
// 3 × ha.keepalive plus start-up (15s with keepalive 2s); after SIGCONT the
// frozen instance finds itself fenced (no confirmation reaches Postgres:
// its walsender was ended by the new active instance) and exits 1, saying
// it was frozen; the store and Kafka hold every change exactly once.
func TestHAFrozenActiveIsReplaced(t *testing.T) {
	k := stack.StartKafka(t)
	e := newEnv(t)
	n := fmt.Sprintf("hafrz-%d", time.Now().UnixNano())
	cfg := writeFullConfig(t, e, k, n)
	a, b := e.newInstance("a"), e.newInstance("b")
	e.startInstance(a, cfg)
	e.waitRole(a, "active", 60*time.Second)
	e.startInstance(b, cfg)
	e.waitRole(b, "standby", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	work, stopWork := e.loadInRounds(ctx)
	time.Sleep(time.Second) // under load for a moment (chaos timing)
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	took := e.waitRole(b, "active", 15*time.Second)
	t.Logf("figure: frozen active replaced %s after SIGSTOP (ha.keepalive 2s)", took.Round(time.Millisecond))
	time.Sleep(time.Until(frozen.Add(60 * time.Second)))
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	a.waitExit1(t, 15*time.Second, "after SIGCONT (resumed)")
	log, _ := os.ReadFile(a.log.Name())
	for _, want := range []string{"did not run for a while", "lost the HA lock session"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the resumed instance's log does not say %q", want)
		}
	}
	bl, _ := os.ReadFile(b.log.Name())
	if !strings.Contains(string(bl), "has not pinged for longer than ha.keepalive allows") {
		t.Error("the standby's log does not say why it ended the frozen instance's lock session")
	}
	stopWork()
	if err := <-work; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(90 * time.Second)
	e.verify(e.store.client(t))
	checkKafka(t, e, k, "balances-"+n, "moves-"+n)
	b.stop(t)
}

// loadInRounds runs the transfer workload in rounds of 300 until stopped;
// work receives its result.
func (e *env) loadInRounds(ctx context.Context) (work <-chan error, stop func()) {
	done := make(chan struct{})
	out := make(chan error, 1)
	go func() {
		for {
			select {
			case <-done:
				out <- nil
				return
			default:
			}
			if err := e.workload(ctx, 300, 2); err != nil {
				out <- err
				return
			}
		}
	}()
	var once sync.Once
	return out, func() { once.Do(func() { close(done) }) }
}
