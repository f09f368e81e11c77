package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// bench is one run's shared state: the servers and options.
type bench struct {
	o       options
	log     *slog.Logger
	pg      *stack.Postgres
	brokers []string
	kafka   brokers // the broker processes, found by their listening sockets
	rules   string  // directory holding one rule directory per workload
	nonce   string  // makes publisher ids unique per run (a shared broker keeps checkpoints)
}

// limit bounds every wait for a scenario to finish: far above any honest
// run, so a stuck pipeline fails instead of hanging.
const limit = 10 * time.Minute

func (b *bench) workerConfig(mode string, w *workload, scenario string) workerConfig {
	cfg := workerConfig{
		Mode: mode, PGURL: b.pg.URL(), Slot: w.slot(scenario), Publication: w.publication, Tables: w.tables,
		Rules: w.rules, Brokers: b.brokers, BatchIntvl: b.o.batchInterval, MaxPending: b.o.maxPending, NoBatch: b.o.noBatchAppend,
		PublisherID: "bench-" + b.nonce + "-" + w.name + "-" + scenario, Verbose: b.o.verbose,
	}
	if b.o.cpuprofile != "" {
		cfg.CPUProfile = fmt.Sprintf("%s.%s.%s.cpu.prof", b.o.cpuprofile, w.name, scenario)
	}
	if b.o.memprofile != "" {
		cfg.MemProfile = fmt.Sprintf("%s.%s.%s.mem.prof", b.o.memprofile, w.name, scenario)
	}
	return cfg
}

// startServer starts the KurrentDB-compatible server (in memory) in a
// process of its own, so its CPU and memory are not counted as Chronicler's.
// With -cpuprofile its profile is PREFIX.<workload>.<scenario>.server.cpu.prof
// and covers the server's life (the publish scenario reads from the server
// the store or full scenario started). The store's URL is its listenAddr.
func (b *bench) startServer(ctx context.Context, latency time.Duration, w *workload, scenario string) (*child, error) {
	cfg := workerConfig{Mode: "server", Latency: latency}
	if b.o.cpuprofile != "" {
		cfg.CPUProfile = fmt.Sprintf("%s.%s.%s.server.cpu.prof", b.o.cpuprofile, w.name, scenario)
	}
	c, err := startChild(cfg)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		url, ch := c.listenOn, c.changed
		c.mu.Unlock()
		if url != "" {
			return c, nil
		}
		select {
		case <-ch:
		case <-c.exited:
			return nil, fmt.Errorf("the KurrentDB-compatible server exited: %s", c.stderrTail())
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		case <-time.After(time.Until(deadline)):
			c.stop()
			return nil, fmt.Errorf("the KurrentDB-compatible server printed no address within 30 s: %s", c.stderrTail())
		}
	}
}

// measured finishes a scenario's result from its worker at the instant it
// was done: wall time since the worker started, the worker's CPU and peak
// RSS, its progress series, and through o the CPU of the server, the
// walsender and the broker over the same interval (read while the worker
// still runs).
func measured(r *Result, c *child, doneAt time.Time, w *workload, o *others) error {
	cpu, rss, err := c.usage()
	if err != nil {
		return fmt.Errorf("reading the worker's usage: %w", err)
	}
	defer o.end(r)
	r.Seconds = doneAt.Sub(c.start).Seconds()
	r.Transactions, r.Changes, r.Events, r.Records = w.txs, w.changes, w.events, w.records
	r.ChangesPerSec = float64(w.changes) / r.Seconds
	r.EventsPerSec = float64(w.events) / r.Seconds
	r.CPUSecPerMChanges = cpu / float64(w.changes) * 1e6
	r.PeakRSSMiB = rss
	r.series = c.progressSeries()
	r.start = c.start
	if len(r.series) > 0 {
		r.Appends = r.series[len(r.series)-1].Appends
	}
	return nil
}

// runCapture is scenario 1: capture + mapping into a null sink.
func (b *bench) runCapture(ctx context.Context, w *workload) (Result, error) {
	r := Result{Scenario: "capture", Workload: w.name}
	o := watchOthers(ctx, b.pg.URL(), nil, w.slot("capture"), nil)
	defer o.stop()
	c, err := startChild(b.workerConfig("capture", w, "capture"))
	if err != nil {
		return r, err
	}
	defer c.stop()
	if err := c.waitFor(ctx, limit, func(p progress, _ bool) bool { return p.MarkerSeen }); err != nil {
		return r, err
	}
	p := c.last()
	if err := measured(&r, c, time.Unix(0, p.T), w, o); err != nil {
		return r, err
	}
	r.Unchanged = p.Unchanged
	if p.Changes != w.changes || p.Events != w.events || p.Failures != 0 || p.Unchanged != w.unchanged {
		return r, fmt.Errorf("capture saw %d changes (%d with unchanged-toast), mapped %d events, %d failed; want %d, %d, %d, 0",
			p.Changes, p.Unchanged, p.Events, p.Failures, w.changes, w.unchanged, w.events)
	}
	return r, c.stop()
}

// runOnServer runs a scenario that stores the workload's events (store-0ms,
// store-2ms with 2 ms injected per append, full, or fill: store-0ms untimed)
// against a fresh server, and returns the server, running and holding the
// events, for the publish scenario; on failure it stops it.
func (b *bench) runOnServer(ctx context.Context, w *workload, scenario string) (Result, *child, error) {
	latency := time.Duration(0)
	if scenario == "store-2ms" {
		latency = 2 * time.Millisecond
	}
	srv, err := b.startServer(ctx, latency, w, scenario)
	if err != nil {
		return Result{Scenario: scenario, Workload: w.name}, nil, err
	}
	var r Result
	if scenario == "full" {
		r, err = b.runFull(ctx, w, srv)
	} else {
		r, err = b.runStore(ctx, w, scenario, srv)
	}
	if err != nil {
		srv.stop()
		return r, nil, err
	}
	return r, srv, nil
}

// runStore is scenario 2: capture → rules → appender → srv, until the end
// marker is durable.
func (b *bench) runStore(ctx context.Context, w *workload, scenario string, srv *child) (Result, error) {
	r := Result{Scenario: scenario, Workload: w.name}
	cfg := b.workerConfig("store", w, scenario)
	cfg.StoreURL = srv.listenAddr()
	o := watchOthers(ctx, b.pg.URL(), srv, w.slot(scenario), nil)
	defer o.stop()
	c, err := startChild(cfg)
	if err != nil {
		return r, err
	}
	defer c.stop()
	p, err := storedAll(ctx, c, w)
	if err != nil {
		return r, err
	}
	if err := measured(&r, c, time.Unix(0, p.T), w, o); err != nil {
		return r, err
	}
	return r, c.stop()
}

// storedAll waits until c, a store or full worker, has the end marker
// durable, and checks it stored every event of the workload's changes with
// no dead letter; it returns the progress line that showed it.
func storedAll(ctx context.Context, c *child, w *workload) (progress, error) {
	// Durable at or past the end marker's own LSN means the marker's
	// transaction (which commits after it) and every one before it are stored.
	if err := c.waitFor(ctx, limit, func(p progress, _ bool) bool { return p.DurableLSN >= uint64(w.marker) }); err != nil {
		return progress{}, err
	}
	p := c.last()
	// The pipeline counts the end marker (a message no rule maps) as a change.
	if p.Changes != w.changes+1 || p.Events != w.events || p.Failures != 0 {
		return p, fmt.Errorf("stored %d events of %d changes, %d dead letters; want %d events of %d changes (and the end marker), 0",
			p.Events, p.Changes, p.Failures, w.events, w.changes)
	}
	return p, nil
}

// runFull is scenario 3: capture → rules → srv → publisher → Kafka
// (exactly once), until a read_committed consumer has every integration
// event.
func (b *bench) runFull(ctx context.Context, w *workload, srv *child) (Result, error) {
	return b.publishTo(ctx, w, "full", srv, w.slot("full"))
}

// runPublish is scenario 4: the publisher alone, from the start of $all of
// srv, a store the workload's events are in, until a read_committed
// consumer has every integration event.
func (b *bench) runPublish(ctx context.Context, w *workload, srv *child) (Result, error) {
	return b.publishTo(ctx, w, "publish", srv, "")
}

// publishTo runs the worker of scenario (full or publish, also its mode)
// against srv until the topic holds every integration event; slot names
// the slot it reads ("": none). The CPU of srv, of the slot's walsender and
// of the Kafka broker is measured with the worker's.
func (b *bench) publishTo(ctx context.Context, w *workload, scenario string, srv *child, slot string) (Result, error) {
	r := Result{Scenario: scenario, Workload: w.name}
	cfg := b.workerConfig(scenario, w, scenario)
	cfg.StoreURL = srv.listenAddr()
	from, err := prepareTopic(ctx, b.brokers, w.topic)
	if err != nil {
		return r, err
	}
	cons, err := startConsumer(b.brokers, w.topic, from, false)
	if err != nil {
		return r, err
	}
	defer cons.close()
	o := watchOthers(ctx, b.pg.URL(), srv, slot, &b.kafka)
	defer o.stop()
	c, err := startChild(cfg)
	if err != nil {
		return r, err
	}
	defer c.stop()
	doneAt, err := cons.waitCount(ctx, w.records, limit, c.exited, c.stderrTail)
	if err != nil {
		return r, fmt.Errorf("topic %s: %w", w.topic, err)
	}
	if err := measured(&r, c, doneAt, w, o); err != nil {
		return r, err
	}
	r.RecordsPerSec = float64(w.records) / r.Seconds
	if scenario == "full" {
		// Every low-level event stored too, not only those promoted.
		if _, err := storedAll(ctx, c, w); err != nil {
			return r, err
		}
	}
	if err := c.stop(); err != nil {
		return r, err
	}
	// Exactly once: nothing beyond the expected records either (the worker
	// has stopped; a duplicate would have been committed before it did).
	if p := c.last(); p.Failures != 0 {
		return r, fmt.Errorf("%d dead letters", p.Failures)
	}
	if n := cons.total(); n != w.records {
		return r, fmt.Errorf("topic %s: %d integration events read; want exactly %d", w.topic, n, w.records)
	}
	return r, nil
}
