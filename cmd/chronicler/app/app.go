// Package app is Chronicler's one composition root: from a configuration
// it builds the capture stage (Postgres → rules → KurrentDB) and the
// publish stage (KurrentDB → promotion rules → Kafka), the HA lease, the
// rule reloader and the state /healthz and /readyz report, and runs them.
// `chronicler run`, `chronicler dev`, the end-to-end tests (through the
// binary) and the benchmark's store and full scenarios all run this code,
// so tests exercise production's wiring.
//
// The dependency rule (held by cmd/chronicler's TestImportGraph): the
// command line (package main) → this package and the runtime parts under
// cmd/chronicler/internal → the stages (capture, publish) → the owners of
// the outside systems (capture/postgres, capture/store, publish/kafka) →
// the rule language (mapping) → the contract (mapping/contract). Arrows
// run one way; capture/retry is a leaf every layer may use.
//
//	a, err := app.New(cfg, app.Options{Parts: config.Parts{Capture: true, Publish: true}, Logger: log})
//	if err != nil { ... }        // a broken rule file or setting fails here, before the HA lock
//	defer a.Close()
//	code := a.Run(ctx)           // ctx's end is the graceful stop
//
// Concurrency: Run once; Health, Ready, Counts and Active from any
// goroutine.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/ha"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish"
)

// StopMargin is how long past shutdown.grace Run waits for its parts to
// return before it gives up on them: a part stuck in a call that ignores its
// context (the store client during an outage) must not hold the process.
const StopMargin = 3 * time.Second

// Options are what the caller gives beside the configuration.
type Options struct {
	// Parts to run. Required: at least one.
	Parts config.Parts
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives every metric. Default: a registry of its own.
	Registerer prometheus.Registerer
	// Out receives the final errors too (the command's stderr). Default:
	// none.
	Out io.Writer
	// Reload delivers SIGHUP: reload the rules now. Default: none.
	Reload <-chan os.Signal
}

// App is one running Chronicler: the parts, the HA lease and the state
// /healthz and /readyz report.
type App struct {
	cfg   *config.Config
	parts config.Parts
	log   *slog.Logger
	reg   prometheus.Registerer
	out   io.Writer
	hup   <-chan os.Signal

	cap      *capture.Capture
	pub      *publish.Publisher
	pubStore *store.Client
	elector  atomic.Pointer[ha.Elector]
	lease    atomic.Pointer[ha.Lease] // while active with HA

	haActive prometheus.Gauge
	failed   atomic.Pointer[error]
	stopping atomic.Bool
	active   atomic.Bool // the parts run (HA lock held, or HA off)
}

// New builds the parts from cfg. The parts are built before the HA lock is
// taken, so a broken rule file or publish setting fails at once, also on a
// standby.
func New(cfg *config.Config, o Options) (*App, error) {
	if !o.Parts.Capture && !o.Parts.Publish {
		return nil, errors.New("app: no part to run")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	a := &App{cfg: cfg, parts: o.Parts, log: o.Logger, reg: o.Registerer, out: o.Out, hup: o.Reload}
	a.haActive = prometheus.NewGauge(prometheus.GaugeOpts{Name: "chronicler_ha_active", Help: "1 while this instance is the active one (holds the HA lock, or HA is off), else 0."})
	if err := a.reg.Register(a.haActive); err != nil {
		return nil, err
	}
	if o.Parts.Capture {
		opts := cfg.CaptureOptions(a.log, a.reg)
		opts.Grace = cfg.ShutdownGrace()
		opts.Postgres.Guard = a.guard
		c, err := capture.New(opts)
		if err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		a.cap = c
	}
	if o.Parts.Publish {
		if err := a.newPublisher(); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	return a, nil
}

// newPublisher builds the publisher with its own store client and the rule
// set loaded from rules.paths.
func (a *App) newPublisher() error {
	rules, err := mapping.Load(a.cfg.Rules.Paths, mapping.Options{})
	if err != nil {
		return err
	}
	db, err := store.Connect(a.cfg.StoreClient())
	if err != nil {
		return err
	}
	reg, err := a.cfg.Registry()
	if err != nil {
		db.Close()
		return err
	}
	pc := a.cfg.PublishConfig()
	pc.Store, pc.Rules, pc.Logger, pc.Grace, pc.Registry = db, rules, a.log, a.cfg.ShutdownGrace(), reg
	pc.Metrics = publish.NewMetrics()
	if err := pc.Metrics.Register(a.reg); err != nil {
		db.Close()
		return err
	}
	p, err := publish.New(pc)
	if err != nil {
		db.Close()
		return err
	}
	a.pub, a.pubStore = p, db
	return nil
}

// Close releases what New opened (the publisher's store client).
func (a *App) Close() {
	if a.pubStore != nil {
		_ = a.pubStore.Close()
	}
}

// PartNames is "capture", "publish" or "capture+publish".
func (a *App) PartNames() string {
	var n []string
	if a.parts.Capture {
		n = append(n, "capture")
	}
	if a.parts.Publish {
		n = append(n, "publish")
	}
	return strings.Join(n, "+")
}

// lockKey is the HA lock's key: ha.lock_key, with the part appended when
// only one part runs (a capture-only and a publish-only instance of one
// slot are both active).
func (a *App) lockKey() string {
	switch {
	case a.parts.Capture && !a.parts.Publish:
		return a.cfg.LockKey() + "/capture"
	case a.parts.Publish && !a.parts.Capture:
		return a.cfg.LockKey() + "/publish"
	}
	return a.cfg.LockKey()
}

// Active reports whether the parts run (the HA lock is held, or HA is off).
func (a *App) Active() bool { return a.active.Load() }

// Counts are the flow through the parts since they started.
type Counts struct {
	Captured     int64        // source changes handled by the capture rules (mapped, unmatched or dead-lettered)
	Stored       int64        // low-level events the store acknowledged
	Appends      int64        // append calls to the store
	Durable      contract.LSN // every event of every transaction up to it is stored (read before the counts)
	Published    int64        // integration records committed to Kafka
	Handled      int64        // stored events the publisher committed past
	DeadLettered int64        // capture and publish dead letters
	CaptureLag   uint64       // bytes between the server's WAL end and the confirmed position
}

// Counts returns the current counts.
func (a *App) Counts() Counts {
	var n Counts
	if a.cap != nil {
		c := a.cap.Counts()
		n.Durable = c.Durable
		n.Captured = c.Pipeline.Mapped + c.Pipeline.Unmatched + c.Pipeline.DeadLettered
		n.Stored, n.Appends = c.Store.Events, c.Store.Appends
		n.DeadLettered += c.Pipeline.DeadLettered
		n.CaptureLag = a.cap.Status().LagBytes()
	}
	if a.pub != nil {
		p := a.pub.Stats()
		n.Published, n.Handled = int64(p.Records), int64(p.Events)
		n.DeadLettered += int64(p.DeadLetters)
	}
	return n
}

func (a *App) fail(err error) { a.failed.CompareAndSwap(nil, &err) }

// guard is capture's check before every connection and confirmation to
// Postgres: with HA, the lease must still be held (a ping of the lock
// session); without HA, nothing to check.
func (a *App) guard(ctx context.Context) error {
	if !a.cfg.HA.Enabled {
		return nil
	}
	l := a.lease.Load()
	if l == nil {
		return ha.ErrLost
	}
	return l.Check(ctx)
}

// Run waits for the HA lock (if on), runs the parts until ctx ends (a
// graceful stop within shutdown.grace) or one fails, and returns the exit
// code: 0 stopped and drained, 1 failed (a part, the HA lock lost, the
// grace passed), 2 the HA configuration is invalid.
func (a *App) Run(ctx context.Context) int {
	var lease *ha.Lease
	if a.cfg.HA.Enabled {
		var code int
		if lease, code = a.acquire(ctx); lease == nil {
			return code
		}
		a.lease.Store(lease)
		defer lease.Release()
	}
	a.active.Store(true)
	a.haActive.Set(1)
	defer a.haActive.Set(0)
	return a.runParts(ctx, lease)
}

// acquire waits for the HA lock: nil and the exit code when it is not
// held (stopped while standby: 0; bad HA settings: 2).
func (a *App) acquire(ctx context.Context) (*ha.Lease, int) {
	slot := ""
	if a.parts.Capture {
		slot = a.cfg.Postgres.Slot
	}
	el, err := ha.New(ha.Config{Conn: a.cfg.PostgresSettings(ha.ApplicationName), Key: a.lockKey(), Slot: slot, Keepalive: a.cfg.HAKeepalive(), Logger: a.log})
	if err != nil {
		a.log.Error("ha", "err", err)
		return nil, 2
	}
	a.elector.Store(el)
	lease, err := el.Acquire(ctx)
	if err != nil {
		return nil, 0 // stopped while standby
	}
	return lease, 0
}
