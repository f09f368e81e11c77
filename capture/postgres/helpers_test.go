package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// memSink records what capture delivers. It de-duplicates re-delivered
// transactions by commit LSN (keeping the highest committed, as the store
// will) and checks that a re-delivered transaction is identical to the
// first delivery. Ack is synchronous at Commit unless asyncAck is set, in
// which case a goroutine acks the highest committed LSN every few ms.
type memSink struct {
	src *Source

	mu        sync.Mutex
	open      *memTx
	txs       []*memTx                  // committed, de-duplicated, in order
	byLSN     map[contract.LSN][]*memTx // every committed delivery, for the identity check
	highest   contract.LSN
	replays   int
	aborts    int
	snapshots int // committed snapshot chunks
	mismatch  error
	asyncAck  bool
	snapshotP contract.LSN
}

type memTx struct {
	tx      contract.Tx
	changes []*contract.Change
}

func newMemSink() *memSink { return &memSink{byLSN: map[contract.LSN][]*memTx{}} }

func (s *memSink) Begin(_ context.Context, tx contract.Tx) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != nil {
		return errors.New("Begin inside an open transaction")
	}
	s.open = &memTx{tx: tx}
	return nil
}

func (s *memSink) Change(_ context.Context, c *contract.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		return errors.New("Change outside a transaction")
	}
	if c.Tx != s.open.tx {
		return fmt.Errorf("change Tx %+v differs from Begin's %+v", c.Tx, s.open.tx)
	}
	if c.Ordinal != uint64(len(s.open.changes)) && c.Op != contract.OpSnapshot {
		return fmt.Errorf("ordinal %d; want %d", c.Ordinal, len(s.open.changes))
	}
	cp := *c
	s.open.changes = append(s.open.changes, &cp)
	return nil
}

func (s *memSink) Commit(_ context.Context, tx contract.Tx) error {
	s.mu.Lock()
	t := s.open
	s.open = nil
	if t == nil || t.tx != tx {
		s.mu.Unlock()
		return errors.New("Commit without matching Begin")
	}
	isSnapshot := tx.XID == 0 && len(t.changes) > 0 && t.changes[0].Op == contract.OpSnapshot
	if prev := s.byLSN[tx.CommitLSN]; len(prev) > 0 && !isSnapshot {
		s.replays++
		if !reflect.DeepEqual(prev[0], t) && s.mismatch == nil {
			s.mismatch = fmt.Errorf("re-delivered transaction %s differs from its first delivery", tx.CommitLSN)
		}
	}
	s.byLSN[tx.CommitLSN] = append(s.byLSN[tx.CommitLSN], t)
	switch {
	case isSnapshot:
		s.snapshots++
		s.snapshotP = tx.CommitLSN
		s.txs = append(s.txs, t)
	case tx.CommitLSN > s.highest:
		s.highest = tx.CommitLSN
		s.txs = append(s.txs, t)
	}
	ack := !s.asyncAck
	s.mu.Unlock()
	if ack {
		s.src.Ack(tx.CommitLSN)
	}
	return nil
}

func (s *memSink) Abort(_ context.Context, tx contract.Tx) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil || s.open.tx != tx {
		return errors.New("Abort without matching Begin")
	}
	s.open = nil
	s.aborts++
	return nil
}

// runAsyncAck acks the highest committed LSN every 5 ms until ctx ends.
func (s *memSink) runAsyncAck(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			h := s.highest
			if s.snapshotP > h {
				h = s.snapshotP
			}
			snap := s.snapshots
			s.mu.Unlock()
			if h > 0 || snap > 0 {
				s.src.Ack(h)
			}
		}
	}
}

// changes returns every de-duplicated change in delivery order.
func (s *memSink) changes() []*contract.Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*contract.Change
	for _, t := range s.txs {
		out = append(out, t.changes...)
	}
	return out
}

func (s *memSink) txCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.txs)
}

// waitFor polls cond every 10 ms until it holds or the deadline passes.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CHRONICLER_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// running is a Source running in the background of a test.
type running struct {
	src    *Source
	sink   *memSink
	cancel context.CancelFunc
	done   chan error
}

// startSource creates and runs a Source with a memSink; the test's cleanup
// stops it and fails the test if Run returned an error.
func startSource(t testing.TB, cfg Config, sink *memSink) *running {
	t.Helper()
	if cfg.StatusInterval == 0 {
		cfg.StatusInterval = 50 * time.Millisecond
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, time.Second
	}
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sink.src = src
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: src, sink: sink, cancel: cancel, done: make(chan error, 1)}
	if sink.asyncAck {
		go sink.runAsyncAck(ctx)
	}
	go func() { r.done <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

func (r *running) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		return errors.New("Run did not return within 30s of cancellation")
	}
}

func baseConfig(pg *stack.Postgres, db string, tables ...string) Config {
	return Config{URL: pg.DatabaseURL(db), Slot: "chron", Publication: "chron_pub", Tables: tables, HeartbeatInterval: -1}
}

// testutilCounter reads a counter's value.
func testutilCounter(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
