package publish_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// stallProduce makes k's Produce requests wait until the returned release
// is called (also at the test's end); stalled receives once the first one
// waits.
func stallProduce(t *testing.T, k *stack.Kafka) (stalled <-chan struct{}, release func()) {
	ch := make(chan struct{}, 1)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	k.Fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		select {
		case ch <- struct{}{}:
		default:
		}
		k.Fake.SleepControl(func() { <-gate })
		return nil, nil, false
	})
	return ch, release
}

func waitStalled(t *testing.T, stalled <-chan struct{}) {
	t.Helper()
	select {
	case <-stalled:
	case <-time.After(time.Minute):
		t.Fatal("the publisher never produced")
	}
}

// TestLagGrowsDuringAStall: while a commit is stuck (the broker does not
// answer Produce), chronicler_publish_lag_seconds keeps being updated and
// grows; it is not frozen at its value from before the commit.
func TestLagGrowsDuringAStall(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	m := publish.NewMetrics()
	if err := m.Register(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	cfg.Metrics, cfg.FlushWhenIdle = m, true
	stalled, release := stallProduce(t, k)
	r := start(t, cfg)
	exp.customers(s, &lsn, 5)
	waitStalled(t, stalled)
	// Two readings, each after the gauge moved on: it is set during the
	// stall, and it grows.
	var last float64
	for i := 0; i < 2; i++ {
		deadline := time.Now().Add(time.Minute)
		for value(t, m.LagSeconds) <= last {
			if time.Now().After(deadline) {
				t.Fatalf("lag gauge stayed at %v during the stall (reading %d)", last, i+1)
			}
			time.Sleep(20 * time.Millisecond) // polling interval, with a deadline
		}
		last = value(t, m.LagSeconds)
	}
	release()
	r.waitThrough(t, s.last)
	exp.check(t, readTopic(t, k, n.customers))
}

// TestStopDuringAStuckCommitIsGraceError: a graceful stop (ctx's end)
// while a commit is stuck lets that commit go on for Config.Grace, then
// Run returns a *GraceError for the abandoned batch (the process exits
// non-zero), not nil; the next run publishes every event once.
func TestStopDuringAStuckCommitIsGraceError(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	cfg.FlushWhenIdle, cfg.Grace = true, 300*time.Millisecond
	stalled, release := stallProduce(t, k)
	r := start(t, cfg)
	exp.customers(s, &lsn, 5)
	waitStalled(t, stalled)
	err := r.stop(t)
	var ge *publish.GraceError
	if !errors.As(err, &ge) || !errors.Is(err, publish.ErrGraceExpired) || ge.Records == 0 || ge.Grace != cfg.Grace {
		t.Fatalf("Run after cancel during a stuck commit: %v; want a *GraceError (ErrGraceExpired) for the batch", err)
	}
	if st := r.p.Stats(); st.Commits != 0 {
		t.Fatalf("stats %+v: want nothing committed", st)
	}
	release()
	r = start(t, cfg)
	r.waitThrough(t, s.last)
	exp.check(t, readTopic(t, k, n.customers))
}

// TestStopDuringACommitFinishesIt: a graceful stop (ctx's end) while a
// commit is under way lets that commit go on within Config.Grace: when the
// broker answers in time, the batch is committed and Run returns nil; every
// event is published once, without another run.
func TestStopDuringACommitFinishesIt(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	// One batch of the five events: its commit starts at the fifth.
	cfg.BatchInterval, cfg.BatchRecords, cfg.Grace = time.Hour, 5, time.Minute
	stalled, release := stallProduce(t, k)
	r := start(t, cfg)
	exp.customers(s, &lsn, 5)
	waitStalled(t, stalled)
	r.cancel()
	// Time for the end of ctx to reach the commit (a commit bound to ctx
	// would be abandoned now); no assertion depends on it.
	time.Sleep(200 * time.Millisecond)
	release()
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after a stop during a commit the broker then answered: %v; want nil", err)
	}
	if st := r.p.Stats(); st.Commits == 0 || st.Through.Commit < s.last {
		t.Fatalf("stats %+v: want the batch under way committed, through %d", st, s.last)
	}
	exp.check(t, readTopic(t, k, n.customers))
}
