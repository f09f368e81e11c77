package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/config"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/ha"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/opsserver"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/reload"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish"
)

// stopMargin is how long past shutdown.grace run waits for its parts to
// return before it exits anyway: a part stuck in a call that ignores its
// context (the store client during an outage) must not hold the process.
const stopMargin = 3 * time.Second

// runner is one `chronicler run`: the parts, the HA lease, the HTTP
// listener and the reloader, and the state /healthz and /readyz report.
type runner struct {
	cfg   *config.Config
	parts config.Parts
	log   *slog.Logger
	reg   *prometheus.Registry
	out   io.Writer // final errors are printed here too

	capCtl  *capture.Control
	pub     *publish.Publisher
	elector atomic.Pointer[ha.Elector]

	haActive prometheus.Gauge
	failed   atomic.Pointer[error]
	stopping atomic.Bool
	active   atomic.Bool // the parts run (HA lock held, or HA off)
}

func runPipeline(cmd *cobra.Command, cfg *config.Config, parts config.Parts) error {
	log := newLogger(cfg, cmd.ErrOrStderr())
	r := &runner{cfg: cfg, parts: parts, log: log, reg: prometheus.NewRegistry(), out: cmd.ErrOrStderr()}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r.haActive = prometheus.NewGauge(prometheus.GaugeOpts{Name: "chronicler_ha_active", Help: "1 while this instance is the active one (holds the HA lock, or HA is off), else 0."})
	r.reg.MustRegister(r.haActive)

	ctx, sigs := notifySignals(log)
	defer sigs.stop()

	var srv *opsserver.Server
	if cfg.HTTP.Addr != "" {
		var err error
		srv, err = opsserver.New(opsserver.Config{Addr: cfg.HTTP.Addr, PProf: cfg.HTTP.PProf, Gatherer: r.reg, Health: r.health, Ready: r.ready, Logger: log})
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), err)
			return exitError(2)
		}
		sctx, stopSrv := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Run(sctx) }()
		defer func() { stopSrv(); <-done }()
		log.Info("http listening", "addr", srv.Addr(), "pprof", cfg.HTTP.PProf)
	}
	log.Info("chronicler starting", "version", versionString(), "parts", partNames(parts), "ha", cfg.HA.Enabled)

	code := r.run(ctx, sigs.hup)
	if code != 0 {
		return exitError(code)
	}
	log.Info("chronicler stopped")
	return nil
}

func partNames(p config.Parts) string {
	var n []string
	if p.Capture {
		n = append(n, "capture")
	}
	if p.Publish {
		n = append(n, "publish")
	}
	return strings.Join(n, "+")
}

// lockKey is the HA lock's key: ha.lock_key, with the part appended when
// only one part runs (a capture-only and a publish-only instance of one
// slot are both active).
func lockKey(cfg *config.Config, parts config.Parts) string {
	switch {
	case parts.Capture && !parts.Publish:
		return cfg.LockKey() + "/capture"
	case parts.Publish && !parts.Capture:
		return cfg.LockKey() + "/publish"
	}
	return cfg.LockKey()
}

// run waits for the HA lock (if on), runs the parts and returns the exit
// code.
func (r *runner) run(ctx context.Context, hup <-chan os.Signal) int {
	// The parts are built before the lock is taken, so a broken rule file
	// or publish setting fails at once, also on a standby. ready() reads
	// them only once active is set.
	grace := r.cfg.ShutdownGrace()
	if r.parts.Capture {
		r.capCtl = capture.NewControl()
	}
	if r.parts.Publish {
		pub, closeStore, err := r.newPublisher(grace)
		if err != nil {
			r.failed.CompareAndSwap(nil, &err)
			r.log.Error("publish", "err", err)
			fmt.Fprintln(r.out, "error: publish:", err)
			return 1
		}
		defer closeStore()
		r.pub = pub
	}
	var lease *ha.Lease
	if r.cfg.HA.Enabled {
		el, err := ha.New(ha.Config{URL: r.cfg.Postgres.URL, Password: r.cfg.Postgres.Password, Key: lockKey(r.cfg, r.parts), Slot: r.slotIfCapturing(),
			Keepalive: r.cfg.HAKeepalive(), Logger: r.log})
		if err != nil {
			r.log.Error("ha", "err", err)
			return 2
		}
		r.elector.Store(el)
		lease, err = el.Acquire(ctx)
		if err != nil {
			return 0 // stopped while standby
		}
		defer lease.Release()
	}
	r.active.Store(true)
	r.haActive.Set(1)
	defer r.haActive.Set(0)

	// partsCtx ends on the first signal (graceful stop) or when a part
	// fails (the others stop gracefully too).
	partsCtx, stopParts := context.WithCancel(ctx)
	defer stopParts()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		ended = make(chan struct{}) // closed when every part returned
	)
	done := func(part string, err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", part, err))
			mu.Unlock()
			r.failed.CompareAndSwap(nil, &err)
		}
		stopParts()
	}
	if r.parts.Capture {
		opts := r.cfg.CaptureOptions(r.log, r.reg)
		opts.Control, opts.Grace = r.capCtl, grace
		wg.Add(1)
		go func() { defer wg.Done(); done("capture", capture.Run(partsCtx, opts)) }()
	}
	if r.pub != nil {
		wg.Add(1)
		go func() { defer wg.Done(); done("publish", r.pub.Run(partsCtx)) }()
	}
	go func() { wg.Wait(); close(ended) }()

	// SIGHUP always reloads; rules.reload turns the polling on.
	{
		interval := r.cfg.ReloadInterval()
		if !r.cfg.Rules.Reload {
			interval = 0
		}
		rl, err := reload.New(reload.Config{Paths: r.cfg.Rules.Paths, Interval: interval, Signals: hup,
			Load: r.loadRules, Apply: r.applyRules, Registerer: r.reg, Logger: r.log})
		if err != nil {
			r.log.Warn("rule reload is off", "err", err)
		} else {
			rctx, stopReload := context.WithCancel(partsCtx)
			rdone := make(chan struct{})
			go func() { defer close(rdone); _ = rl.Run(rctx) }()
			defer func() { stopReload(); <-rdone }()
		}
	}

	var lost <-chan struct{}
	if lease != nil {
		lost = lease.Lost()
	}
	select {
	case <-ended:
	case <-lost:
		// Another instance may take over now: stop all work at once,
		// without draining (the process exits; nothing unconfirmed is lost).
		r.log.Error("lost the HA lock session; stopping all work at once (another instance may take over)", "err", lease.Err())
		err := lease.Err()
		r.failed.CompareAndSwap(nil, &err)
		return 1
	case <-partsCtx.Done():
		r.stopping.Store(true)
		if ctx.Err() != nil {
			r.log.Info("graceful stop", "grace", grace)
		}
		select {
		case <-ended:
		case <-lost:
			r.log.Error("lost the HA lock session while stopping; exiting at once", "err", lease.Err())
			return 1
		case <-time.After(grace + stopMargin):
			r.log.Error("the parts did not stop within shutdown.grace; exiting anyway (what was not confirmed is delivered again by the next instance: nothing is lost)",
				"grace", grace, "capture", r.captureLeft())
			return 1
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		for _, err := range errs {
			r.log.Error("stopped", "err", err)
			fmt.Fprintln(r.out, "error:", err)
		}
		return 1
	}
	return 0
}

func (r *runner) slotIfCapturing() string {
	if r.parts.Capture {
		return r.cfg.Postgres.Slot
	}
	return ""
}

func (r *runner) captureLeft() string {
	if r.capCtl == nil {
		return "-"
	}
	st := r.capCtl.Status()
	return fmt.Sprintf("phase %s, confirmed %s, WAL end %s", st.Phase, st.Confirmed, st.WALEnd)
}

// newPublisher builds the publisher with its own store client and the rule
// set loaded from rules.paths.
func (r *runner) newPublisher(grace time.Duration) (*publish.Publisher, func(), error) {
	rules, err := mapping.Load(r.cfg.Rules.Paths, mapping.Options{})
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Connect(r.cfg.StoreClient())
	if err != nil {
		return nil, nil, err
	}
	pc := r.cfg.PublishConfig()
	pc.Store, pc.Rules, pc.Logger, pc.Grace = db, rules, r.log, grace
	pc.Metrics = publish.NewMetrics()
	if err := pc.Metrics.Register(r.reg); err != nil {
		db.Close()
		return nil, nil, err
	}
	p, err := publish.New(pc)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return p, func() { db.Close() }, nil
}

// loadRules is the reload check: as at start for every part that runs.
func (r *runner) loadRules(paths []string) (*mapping.RuleSet, error) {
	var rs *mapping.RuleSet
	var err error
	if r.capCtl != nil {
		rs, err = r.capCtl.LoadRules(paths)
		if errors.Is(err, capture.ErrNotRunning) {
			return nil, fmt.Errorf("%w: %v", reload.ErrNotReady, err)
		}
	} else {
		rs, err = mapping.Load(paths, mapping.Options{})
	}
	if err != nil {
		return nil, err
	}
	if r.parts.Publish && len(rs.PromotionRules()) == 0 {
		return nil, fmt.Errorf("rules %v have no promotion rules, and this instance publishes: add a promote: section", rs.Files())
	}
	return rs, nil
}

func (r *runner) applyRules(rs *mapping.RuleSet) error {
	if r.capCtl != nil {
		if _, err := r.capCtl.SwapRules(rs); err != nil {
			return err
		}
	}
	if r.pub != nil {
		r.pub.SwapRules(rs)
	}
	return nil
}
