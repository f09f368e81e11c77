package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/app"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
)

// workerConfig is what the parent tells a worker (as JSON in workerEnv).
type workerConfig struct {
	// Mode: capture (scenario 1), store (2), full (3 and the latency run),
	// publish (4), or server (the KurrentDB-compatible server).
	Mode        string        `json:"mode"`
	PGURL       string        `json:"pg_url,omitempty"`
	Slot        string        `json:"slot,omitempty"`
	Publication string        `json:"publication,omitempty"`
	Tables      []string      `json:"tables,omitempty"`
	Rules       string        `json:"rules,omitempty"`
	StoreURL    string        `json:"store_url,omitempty"`
	Brokers     []string      `json:"brokers,omitempty"`
	PublisherID string        `json:"publisher_id,omitempty"`
	BatchIntvl  time.Duration `json:"batch_interval,omitempty"`
	MaxPending  int           `json:"max_pending_bytes,omitempty"` // store.Config.MaxPendingBytes; 0: its default
	CPUProfile  string        `json:"cpuprofile,omitempty"`
	NoBatch     bool          `json:"no_batch_append,omitempty"` // capture.Options.NoBatchAppend
	MemProfile  string        `json:"memprofile,omitempty"`
	Latency     time.Duration `json:"append_latency,omitempty"` // server mode
	Verbose     bool          `json:"verbose,omitempty"`
}

// progress is one line a worker prints on stdout, every progressEvery.
type progress struct {
	T           int64  `json:"t"`                       // unix nanoseconds
	Changes     int64  `json:"changes"`                 // source changes seen (the store modes count the end marker too)
	Events      int64  `json:"events"`                  // low-level events mapped (capture) or stored (store, full); read (publish)
	Records     int64  `json:"records"`                 // integration records committed to Kafka (full, publish)
	Appends     int64  `json:"appends,omitempty"`       // append calls to the store (store, full)
	Unchanged   int64  `json:"unchanged,omitempty"`     // changes with an unchanged-toast column (capture)
	Failures    int64  `json:"failures,omitempty"`      // changes a rule failed on (capture) or dead letters (store, full, publish)
	DurableLSN  uint64 `json:"durable_lsn,omitempty"`   // store, full
	LagBytes    int64  `json:"lag_bytes,omitempty"`     // store, full: the server's WAL end minus the position confirmed to Postgres
	MarkerSeen  bool   `json:"marker_seen,omitempty"`   // capture
	Err         string `json:"err,omitempty"`           // the worker failed
	HeapInUseMB int64  `json:"heap_inuse_mb,omitempty"` // Go heap in use
}

const progressEvery = 100 * time.Millisecond

// workerMain runs a worker until SIGTERM (or its work fails) and exits.
func workerMain(raw string) {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench worker: bad configuration:", err)
		os.Exit(2)
	}
	log := newLogger(cfg.Verbose)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if cfg.Mode == "server" {
		if err := runServer(ctx, cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	stopProfile, err := startProfile(cfg.CPUProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		os.Exit(1)
	}
	err = runWorker(ctx, cfg, log)
	stopProfile()
	if herr := writeHeap(cfg.MemProfile); err == nil {
		err = herr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runServer(ctx context.Context, cfg workerConfig) error {
	stopProfile, err := startProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	srv, err := kurrentdb.Start(kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatency: cfg.Latency},
		Logger: newLogger(false)})
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", srv.URL())
	<-ctx.Done()
	return srv.Close()
}

// runWorker runs the scenario's Chronicler part, printing progress, until
// ctx ends.
func runWorker(ctx context.Context, cfg workerConfig, log *slog.Logger) error {
	var (
		sample func() progress
		wg     sync.WaitGroup
		errMu  sync.Mutex
		first  error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(what string, err error) {
		if err == nil || errors.Is(err, context.Canceled) {
			return
		}
		errMu.Lock()
		if first == nil {
			first = fmt.Errorf("%s: %w", what, err)
		}
		errMu.Unlock()
		cancel()
	}
	switch cfg.Mode {
	case "capture":
		rules, err := mapping.Load([]string{cfg.Rules}, mapping.Options{})
		if err != nil {
			return err
		}
		src, err := postgres.New(postgres.Config{
			URL: cfg.PGURL, Slot: cfg.Slot, Publication: cfg.Publication, Tables: cfg.Tables,
			SnapshotMode: postgres.SnapshotNever, HeartbeatInterval: -1,
		}, log)
		if err != nil {
			return err
		}
		sink := &nullSink{src: src, rules: rules}
		wg.Add(1)
		go func() { defer wg.Done(); fail("capture", src.Run(ctx, sink)) }()
		sample = func() progress {
			return progress{Changes: sink.changes.Load(), Events: sink.events.Load(), Failures: sink.failures.Load(),
				Unchanged: sink.unchanged.Load(), MarkerSeen: sink.marker.Load()}
		}
	case "store", "full", "publish":
		// Production's wiring: the app (cmd/chronicler/app) from a
		// configuration, as `chronicler run` builds it.
		a, err := newApp(cfg, log)
		if err != nil {
			return err
		}
		defer a.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := a.Run(ctx); code != 0 {
				fail("run", fmt.Errorf("the pipeline stopped with exit code %d (rerun with -verbose for its log)", code))
			}
		}()
		sample = func() progress {
			// Counts reads the durable LSN before the counters: they then
			// include every event it covers.
			c := a.Counts()
			p := progress{Changes: c.Captured, Events: c.Stored, Appends: c.Appends, Failures: c.DeadLettered,
				DurableLSN: uint64(c.Durable), LagBytes: int64(c.CaptureLag), Records: c.Published}
			if cfg.Mode == "publish" {
				p.Events = c.Handled
			}
			return p
		}
	default:
		return fmt.Errorf("unknown worker mode %q", cfg.Mode)
	}

	enc := json.NewEncoder(os.Stdout)
	var ms runtime.MemStats
	var peakHeap uint64
	emit := func(p progress) {
		p.T = time.Now().UnixNano()
		runtime.ReadMemStats(&ms)
		p.HeapInUseMB = int64(ms.HeapInuse >> 20)
		_ = enc.Encode(p)
		// With -memprofile, the heap is also written at its peak (every
		// 25% of growth), which the profile at exit does not show.
		if cfg.MemProfile != "" && ms.HeapInuse > peakHeap+peakHeap/4 {
			peakHeap = ms.HeapInuse
			_ = writeHeap(cfg.MemProfile + ".peak")
		}
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			emit(sample())
		}
	}
	wg.Wait()
	errMu.Lock()
	defer errMu.Unlock()
	if first != nil {
		emit(progress{Err: first.Error()})
	}
	return first
}

// newApp builds the app for a store, full or publish worker: the product's
// configuration, with the scenario's servers and knobs, no HA, no HTTP
// listener, no rule polling, no heartbeat (it would add messages to the
// WAL every slot counts) and no snapshot.
func newApp(cfg workerConfig, log *slog.Logger) (*app.App, error) {
	c := config.Defaults()
	parts := config.Parts{Capture: cfg.Mode != "publish", Publish: cfg.Mode != "store"}
	c.Postgres.URL, c.Postgres.Slot, c.Postgres.Publication, c.Postgres.Tables = cfg.PGURL, cfg.Slot, cfg.Publication, cfg.Tables
	c.Postgres.HeartbeatInterval, c.Snapshot.Mode = "24h", "never"
	c.Store.URL, c.Store.BatchAppend = cfg.StoreURL, !cfg.NoBatch
	if cfg.MaxPending > 0 {
		c.Store.MaxPendingBytes = cfg.MaxPending
	}
	c.Kafka.Brokers, c.Kafka.CreateTopics = cfg.Brokers, true
	c.Rules.Paths, c.Rules.Reload = []string{cfg.Rules}, false
	c.Delivery.PublisherID = cfg.PublisherID
	if cfg.BatchIntvl > 0 {
		c.Delivery.BatchInterval = cfg.BatchIntvl.String()
	}
	c.HTTP.Addr, c.HA.Enabled = "", false
	if err := c.Check(parts); err != nil {
		return nil, err
	}
	return app.New(&c, app.Options{Parts: parts, Logger: log})
}

// nullSink maps every change with the rules and drops the events; it
// acknowledges each transaction at once, so capture confirms as it goes.
// It stops counting at the end marker.
type nullSink struct {
	src       *postgres.Source
	rules     *mapping.RuleSet
	buf       []mapping.Event
	changes   atomic.Int64
	events    atomic.Int64
	failures  atomic.Int64
	unchanged atomic.Int64
	marker    atomic.Bool
}

func (s *nullSink) Begin(context.Context, contract.Tx) error { return nil }

func (s *nullSink) Change(_ context.Context, c *contract.Change) error {
	if c.Op == contract.OpMessage && c.Message != nil && c.Message.Prefix == endPrefix {
		s.marker.Store(true)
		return nil
	}
	s.changes.Add(1)
	for _, v := range c.New {
		if contract.IsUnchanged(v) {
			s.unchanged.Add(1)
			break
		}
	}
	var err error
	s.buf, err = s.rules.Capture(c, s.buf[:0])
	if err != nil {
		s.failures.Add(1)
	}
	s.events.Add(int64(len(s.buf)))
	return nil
}

func (s *nullSink) Commit(_ context.Context, tx contract.Tx) error {
	s.src.Ack(tx.CommitLSN)
	return nil
}

func (s *nullSink) Abort(context.Context, contract.Tx) error { return nil }

func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func writeHeap(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.WriteHeapProfile(f)
}
