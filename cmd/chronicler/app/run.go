package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/ha"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/reload"
	"github.com/chronicler-dev/chronicler/mapping"
)

// parts runs the stages: the first failure, or the first part to end, stops
// the others gracefully.
type parts struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	ended  chan struct{} // closed when every part returned
	cancel context.CancelFunc
}

func (p *parts) start(ctx context.Context, name string, run func(context.Context) error, failed func(error)) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := run(ctx); err != nil {
			named := err
			if !strings.HasPrefix(err.Error(), name+": ") { // a part's own errors may name it already
				named = fmt.Errorf("%s: %w", name, err)
			}
			p.mu.Lock()
			p.errs = append(p.errs, named)
			p.mu.Unlock()
			failed(err)
		}
		p.cancel()
	}()
}

// runParts runs the parts (the lease, if any, is held) and the reloader,
// and returns the exit code.
func (a *App) runParts(ctx context.Context, lease *ha.Lease) int {
	// partsCtx ends on the first signal (graceful stop) or when a part
	// fails (the others stop gracefully too).
	partsCtx, stopParts := context.WithCancel(ctx)
	defer stopParts()
	p := &parts{ended: make(chan struct{}), cancel: stopParts}
	if a.cap != nil {
		p.start(partsCtx, "capture", a.cap.Run, a.fail)
	}
	if a.pub != nil {
		p.start(partsCtx, "publish", a.pub.Run, a.fail)
	}
	go func() { p.wg.Wait(); close(p.ended) }()
	stopReload := a.startReload(partsCtx)
	defer stopReload()

	var lost <-chan struct{}
	if lease != nil {
		lost = lease.Lost()
	}
	select {
	case <-p.ended:
	case <-lost:
		// Another instance may take over now: stop all work at once,
		// without draining (the process exits; nothing unconfirmed is lost;
		// capture's guard refuses every confirmation and connection from
		// now on).
		a.active.Store(false)
		if a.cap != nil {
			a.cap.StopNow()
		}
		a.log.Error("lost the HA lock session; stopping all work at once, without draining (another instance may take over)", "err", lease.Err())
		a.fail(lease.Err())
		return 1
	case <-partsCtx.Done():
		if code, done := a.stop(ctx, p, lost); done {
			return code
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, err := range p.errs {
		a.log.Error("stopped", "err", err)
		fmt.Fprintln(a.out, "error:", err)
	}
	if len(p.errs) > 0 {
		return 1
	}
	return 0
}

// stop waits for the parts after a signal or a part's end: done is set
// with the exit code when the wait itself decides it (the lock lost, the
// grace passed).
func (a *App) stop(ctx context.Context, p *parts, lost <-chan struct{}) (code int, done bool) {
	a.stopping.Store(true)
	grace := a.cfg.ShutdownGrace()
	if ctx.Err() != nil {
		a.log.Info("graceful stop", "grace", grace)
	}
	select {
	case <-p.ended:
		return 0, false
	case <-lost:
		a.active.Store(false)
		if a.cap != nil {
			a.cap.StopNow()
		}
		a.log.Error("lost the HA lock session while stopping; exiting at once, without draining")
		return 1, true
	case <-time.After(grace + StopMargin):
		a.log.Error("the parts did not stop within shutdown.grace; exiting anyway (what was not confirmed is delivered again by the next instance: nothing is lost)",
			"grace", grace, "capture", a.captureLeft())
		return 1, true
	}
}

func (a *App) captureLeft() string {
	if a.cap == nil {
		return "-"
	}
	st := a.cap.Status()
	return fmt.Sprintf("phase %s, confirmed %s, WAL end %s", st.Phase, st.Confirmed, st.WALEnd)
}

// startReload starts the rule reloader (SIGHUP always; rules.reload turns
// the polling on) and returns its stop.
func (a *App) startReload(ctx context.Context) func() {
	interval := a.cfg.ReloadInterval()
	if !a.cfg.Rules.Reload {
		interval = 0
	}
	rl, err := reload.New(reload.Config{Paths: a.cfg.Rules.Paths, Also: a.configFiles(), Interval: interval, Signals: a.hup,
		Load: a.loadRules, Apply: a.applyRules, Registerer: a.reg, Logger: a.log})
	if err != nil {
		a.log.Warn("rule reload is off", "err", err)
		return func() {}
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = rl.Run(rctx) }()
	return func() { stop(); <-done }
}

// schemaCheckTimeout bounds a reload's registration of its schemas.
const schemaCheckTimeout = time.Minute

// loadRules is the reload check: as at start for every part that runs,
// with capture's tables as the configuration file lists them now
// (reloadTables).
func (a *App) loadRules(paths []string) (*mapping.RuleSet, error) {
	var rs *mapping.RuleSet
	var err error
	if a.cap != nil {
		var tables *capture.Tables
		if tables, err = a.reloadTables(); err != nil {
			return nil, err
		}
		rs, err = a.cap.LoadRulesWith(paths, tables)
		if errors.Is(err, capture.ErrNotRunning) {
			return nil, fmt.Errorf("%w: %v", reload.ErrNotReady, err)
		}
	} else {
		rs, err = mapping.Load(paths, mapping.Options{})
	}
	if err != nil {
		return nil, err
	}
	if a.parts.Publish && len(rs.PromotionRules()) == 0 {
		return nil, fmt.Errorf("rules %v have no promotion rules, and this instance publishes: add a promote: section", rs.Files())
	}
	if a.pub != nil {
		// With a schema registry: registered now, or refused (an
		// incompatible change) while the running rules stay.
		ctx, cancel := context.WithTimeout(context.Background(), schemaCheckTimeout)
		defer cancel()
		if err := a.pub.CheckSchemas(ctx, rs); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// applyRules swaps rs into the parts. Capture's adding of new tables
// comes after its swap; when it fails, rs is in force in every part and
// the error is a *reload.AppliedError.
func (a *App) applyRules(rs *mapping.RuleSet) error {
	var added error
	if a.cap != nil {
		_, err := a.cap.SwapRules(rs)
		if errors.Is(err, capture.ErrNotRunning) {
			return err
		}
		if err != nil {
			added = &reload.AppliedError{Err: err}
		}
	}
	if a.pub != nil {
		a.pub.SwapRules(rs)
	}
	return added
}
