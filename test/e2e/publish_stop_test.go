package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestStopDuringStalledCommitExitsOne: `chronicler run --only publish`
// with its (dedicated, real) broker stopped: the lag gauge grows while the
// commit is stuck, and a SIGTERM then exits 1 within shutdown.grace plus
// a margin (the open batch was abandoned: not a clean stop), not 0. With
// the broker back, a new run publishes every event exactly once.
func TestStopDuringStalledCommitExitsOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	b := stack.StartKafkaBroker(t)
	k := &stack.Kafka{Brokers: []string{b.Addr}, Kind: "real", Broker: b}
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	s := &chaosStore{t: t, db: kurrentdbtest.Client(t, srv.URL()), want: map[string]expected{}}
	n := fmt.Sprintf("stall-%d", time.Now().UnixNano())
	customers := "customers-" + n
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(strings.NewReplacer("{{customers}}", customers, "{{orders}}", "orders-"+n).Replace(chaosRules)), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cfg := publishConfig(t, srv.URL(), k.Brokers, rules, n, "exactly-once")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const grace = 3 * time.Second
	text = []byte(strings.NewReplacer("  addr: \"\"", fmt.Sprintf("  addr: %q", addr), "grace: 5s", "grace: "+grace.String()).Replace(string(text)))
	if err := os.WriteFile(cfg, text, 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "publisher.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	run := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(bins.chronicler, "run", "--only", "publish", "--config", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting the publisher: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, done
	}
	defer func() {
		if t.Failed() {
			t.Logf("publisher log:\n%s", tailFile(logPath, 40))
		}
	}()

	cmd, done := run()
	if err := s.customers(ctx, "c0", 0, 5, 20); err != nil {
		t.Fatal(err)
	}
	consumeAll(t, ctx, k, customers, 20)
	b.Stop()
	if err := s.customers(ctx, "c1", 100, 5, 20); err != nil {
		t.Fatal(err)
	}
	// The batch of the second 20 is stuck in its commit: the lag gauge is
	// updated and grows meanwhile.
	var last float64
	for i := 0; i < 2; i++ {
		deadline := time.Now().Add(time.Minute)
		for metric(t, addr, "chronicler_publish_lag_seconds", "") <= last {
			if time.Now().After(deadline) {
				t.Fatalf("chronicler_publish_lag_seconds stayed at %v with the broker down (reading %d)", last, i+1)
			}
			time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
		}
		last = metric(t, addr, "chronicler_publish_lag_seconds", "")
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("exit after SIGTERM with the open batch stuck: %v; want exit code 1", err)
		}
		if took := time.Since(sent); took > grace+10*time.Second {
			t.Errorf("exited %s after SIGTERM; want within shutdown.grace (%s) plus a margin", took, grace)
		}
	case <-time.After(grace + 30*time.Second):
		t.Fatalf("no exit within %s of SIGTERM", grace+30*time.Second)
	}
	if !strings.Contains(tailFile(logPath, 40), "was not committed within the grace") {
		t.Errorf("the log does not say the open batch was left")
	}

	if err := b.Start(); err != nil {
		t.Fatalf("restarting the broker: %v", err)
	}
	_, _ = run()
	seen := map[string]int{}
	for _, id := range consumeAll(t, ctx, k, customers, 40) {
		seen[id]++
	}
	for id := range s.want {
		if seen[id] != 1 {
			t.Errorf("ce_id %s seen %d times; want once", id, seen[id])
		}
	}
	if len(seen) != len(s.want) {
		t.Errorf("%d distinct ce_ids on the topic; want %d", len(seen), len(s.want))
	}
}

// consumeAll reads topic from its start with read_committed until it has n
// records, then for 2s more (anything beyond n is a duplicate), and returns
// their ce_ids in order.
func consumeAll(t *testing.T, ctx context.Context, k *stack.Kafka, topic string, n int) []string {
	t.Helper()
	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var ids []string
	var quiet time.Time
	for {
		pctx, stop := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		stop()
		if ctx.Err() != nil {
			t.Fatalf("%d of %d records on %s before the deadline", len(ids), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == kafka.HeaderID {
					ids = append(ids, string(h.Value))
				}
			}
		})
		switch {
		case len(ids) > n:
			t.Fatalf("%d records on %s; want %d", len(ids), topic, n)
		case len(ids) == n && quiet.IsZero():
			quiet = time.Now().Add(2 * time.Second)
		case len(ids) == n && time.Now().After(quiet):
			return ids
		}
	}
}
