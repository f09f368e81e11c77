package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronicler-dev/chronicler/capture/change"
	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping"
)

// nullSink maps every change with the rules and drops the events; it
// acknowledges each transaction at once, so capture confirms as it goes.
type nullSink struct {
	src      *postgres.Source
	rules    *mapping.RuleSet
	buf      []mapping.Event
	changes  atomic.Int64
	events   atomic.Int64
	failures atomic.Int64
	done     chan struct{}
}

func (s *nullSink) Begin(context.Context, change.Tx) error { return nil }

func (s *nullSink) Change(_ context.Context, c *change.Change) error {
	if c.Op == change.OpMessage && c.Message != nil && c.Message.Prefix == endPrefix {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
		return nil
	}
	s.changes.Add(1)
	var err error
	s.buf, err = s.rules.Capture(c, s.buf[:0])
	if err != nil {
		s.failures.Add(1)
	}
	s.events.Add(int64(len(s.buf)))
	return nil
}

func (s *nullSink) Commit(_ context.Context, tx change.Tx) error {
	s.src.Ack(tx.CommitLSN)
	return nil
}

func (s *nullSink) Abort(context.Context, change.Tx) error { return nil }

// runCapture is scenario 1: capture + mapping over the workload's WAL into a
// null sink.
func runCapture(ctx context.Context, e *env, o options, log *slog.Logger) (Result, error) {
	rules, err := mapping.Load([]string{o.rules}, mapping.Options{})
	if err != nil {
		return Result{}, err
	}
	src, err := postgres.New(postgres.Config{
		URL: e.url, Slot: captureSlot, Publication: publication, Tables: benchTables,
		SnapshotMode: postgres.SnapshotNever, HeartbeatInterval: -1,
	}, log)
	if err != nil {
		return Result{}, err
	}
	sink := &nullSink{src: src, rules: rules, done: make(chan struct{})}
	cpu0 := cpuSeconds()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- src.Run(runCtx, sink) }()
	select {
	case <-sink.done:
	case err := <-errc:
		return Result{}, fmt.Errorf("capture stopped before the end marker: %v", err)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	elapsed := time.Since(start)
	cpu := cpuSeconds() - cpu0
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return Result{}, err
	}
	n := sink.changes.Load()
	r := Result{
		Scenario:          "capture",
		Changes:           n,
		Seconds:           elapsed.Seconds(),
		ChangesPerSec:     float64(n) / elapsed.Seconds(),
		CPUSecPerMChanges: cpu / float64(n) * 1e6,
		PeakRSSMiB:        peakRSSMiB(),
		Events:            sink.events.Load(),
		Goal:              0.9,
	}
	if f := sink.failures.Load(); f > 0 {
		return r, fmt.Errorf("%d changes failed their rules", f)
	}
	return r, nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSSMiB is this process's peak resident set (VmHWM).
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}
