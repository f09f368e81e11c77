package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// slotWait bounds how long Run waits for a slot held by another process.
const slotWait = 60 * time.Second

// Options configure [Run]: the whole capture side, from Postgres to the store.
type Options struct {
	// Postgres configures the source. SnapshotState defaults to a
	// [StoreSnapshotState] on the store; Registerer to Options.Registerer.
	Postgres postgres.Config
	// StoreURL is the KurrentDB connection string (esdb:// or
	// esdb+discover://; TLS and credentials as its parameters say). Required.
	StoreURL string
	// StoreUsername and StorePassword, when set, replace the credentials of
	// StoreURL (so a password can come from a secret file instead of the URL).
	StoreUsername, StorePassword string
	// Store configures the appender; Slot, OnDurable and Logger are set by
	// Run, and BatchAppend (from StoreURL) when BatchAppend is true.
	Store store.Config
	// BatchAppend appends through the store's BatchAppend RPC when it lists
	// it (store.batch_append, true by default in the configuration; false,
	// or a store that does not list it: every append is an AppendToStream
	// call of the official client).
	BatchAppend bool
	// RulePaths are the rule files or directories. Required.
	RulePaths []string
	// Pipeline configures the pipeline; Slot, Rules, Ack, Registerer and
	// Logger are set by Run.
	Pipeline Config
	// Registerer receives every metric. Default nil: not registered.
	Registerer prometheus.Registerer
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Grace bounds a graceful stop. When ctx ends while the source streams,
	// Run stops taking new transactions (the one being received is taken to
	// its commit), lets the appends under way finish, writes the progress
	// marker, confirms the durable position to Postgres, and returns nil; if
	// that takes longer than Grace it stops everything and returns a
	// *GraceError (what was not confirmed is delivered again on the next
	// start). During start-up and the initial snapshot, and with Grace 0
	// (the default), ctx's end stops everything at once.
	Grace time.Duration
}

// Capture is the capture stage: the source, the rules, the appender and the
// pipeline, wired from Options, with the same shape as the publisher (New,
// Run, Status, SwapRules). Status, LoadRules, SwapRules and Stats may be
// called from any goroutine.
type Capture struct {
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	pipe *Pipeline                        // nil until Run has wired the parts
	src  *atomic.Pointer[postgres.Source] // the running Source (replaced after a busy slot)
	cat  mapping.Catalogue                // the captured tables' columns, once read
	app  *store.Appender                  // the last Run's, for Counts
	// counted is the last Run's pipeline, for Counts (pipe is nil again
	// once Run returned).
	counted *Pipeline
	// prepared is the table addition LoadRulesWith checked with a rule
	// set, for SwapRules of that set.
	prepared *prepared
	// now makes the end of Run's context stop everything at once, without
	// the graceful drain (StopNow).
	now atomic.Bool
}

// StopNow makes the end of Run's context stop everything at once, without
// draining: nothing more is stored or confirmed (the HA lease was lost:
// another instance may take over). Safe for concurrent use.
func (c *Capture) StopNow() { c.now.Store(true) }

// New checks opts; nothing is connected until Run.
func New(opts Options) (*Capture, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if len(opts.RulePaths) == 0 {
		return nil, &ConfigError{Field: "rules.paths", Reason: "required: at least one rule file or directory"}
	}
	if err := store.ParseURL(opts.StoreURL); err != nil {
		var ue *store.URLError
		if errors.As(err, &ue) {
			return nil, &ConfigError{Field: "store.url", Reason: ue.Reason}
		}
		return nil, err
	}
	return &Capture{opts: opts, log: opts.Logger}, nil
}

// Run is New(opts) and its Run.
func Run(ctx context.Context, opts Options) error {
	c, err := New(opts)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// Run wires the source, the rules, the appender and the pipeline and runs
// them until ctx is cancelled (it returns nil) or one of them fails (it
// returns that error; the others are stopped and waited for). The rules are
// loaded after the catalogue is read from the database and checked against
// it before anything is captured; a rule reading a column its table does
// not have (renamed or dropped while capture was stopped) loads, and the
// pipeline dead-letters its changes (schema.go).
func (c *Capture) Run(ctx context.Context) error {
	o := &c.opts
	db, err := store.Connect(store.ClientConfig{URL: o.StoreURL, Username: o.StoreUsername, Password: o.StorePassword, Logger: c.log})
	if err != nil {
		return err
	}
	defer db.Close()
	pgCfg := c.sourceConfig(db)
	src, err := postgres.New(pgCfg, c.log)
	if err != nil {
		return err
	}
	rules, err := c.readRules(ctx, src)
	if err != nil || rules == nil {
		return err
	}
	var cur atomic.Pointer[postgres.Source]
	cur.Store(src)
	app, pipe, err := c.assemble(db, pgCfg.Slot, rules, &cur)
	if err != nil {
		return err
	}
	if err := src.WaitSlotFree(ctx, slotWait); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	c.attach(pipe, &cur, app)
	defer c.detach()
	c.log.Info("capture running", "slot", pgCfg.Slot, "tables", pgCfg.Tables, "deadletter_stream", pipe.cfg.DeadLetterStream, "progress_stream", pipe.progressStream)
	err = c.runParts(ctx, app, pipe, pgCfg, &cur)
	st := pipe.Stats()
	c.log.Info("capture stopped", "durable_lsn", app.Durable().String(), "mapped", st.Mapped, "unmatched", st.Unmatched, "deadlettered", st.DeadLettered, "err", err)
	return err
}

// sourceConfig is Options.Postgres with its defaults: snapshot state in the
// store, and the metrics registerer.
func (c *Capture) sourceConfig(db *store.Client) postgres.Config {
	pgCfg := c.opts.Postgres
	if pgCfg.SnapshotState == nil {
		pgCfg.SnapshotState = NewStoreSnapshotState(db, c.log)
	}
	if pgCfg.History == nil {
		// A missing slot with progress markers in the store was dropped
		// under capture: a gap (postgres.Config.OnMissingSlot).
		pgCfg.History = func(ctx context.Context) ([]string, error) { return SlotHistory(ctx, db, pgCfg.Slot, false) }
	}
	if pgCfg.Registerer == nil {
		pgCfg.Registerer = c.opts.Registerer
	}
	if pgCfg.Registerer != nil {
		// A Source replaced after a busy slot (runSource) registers its
		// metrics again.
		pgCfg.Registerer = replacing{pgCfg.Registerer}
	}
	return pgCfg
}

// readRules reads the captured tables' columns and loads the rules against
// them; nil rules and nil error when ctx ended first.
func (c *Capture) readRules(ctx context.Context, src *postgres.Source) (*mapping.RuleSet, error) {
	cat, err := src.Catalog(ctx)
	if err != nil {
		if ctx.Err() != nil { // stopped during start-up: not a failure
			return nil, nil
		}
		return nil, fmt.Errorf("reading the captured tables' columns: %w", err)
	}
	mcat := Catalogue(cat)
	rules, err := loadRules(c.opts.RulePaths, mcat, true)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cat = mcat
	c.mu.Unlock()
	c.log.Info("rules loaded", "files", len(rules.Files()), "capture_rules", len(rules.CaptureRules()))
	return rules, nil
}

// assemble creates the appender and the pipeline that feeds it.
func (c *Capture) assemble(db *store.Client, slot string, rules *mapping.RuleSet, cur *atomic.Pointer[postgres.Source]) (*store.Appender, *Pipeline, error) {
	var pipe *Pipeline // set before the appender runs, so before OnDurable
	stCfg := c.opts.Store
	stCfg.Slot = slot
	stCfg.OnDurable = func(l contract.LSN) { pipe.Durable(l) }
	stCfg.Logger = c.log
	stCfg.BatchAppend = stCfg.BatchAppend || c.opts.BatchAppend
	app, err := store.New(db, stCfg)
	if err != nil {
		return nil, nil, err
	}
	plCfg := c.opts.Pipeline
	plCfg.Slot, plCfg.Rules, plCfg.Logger = slot, rules, c.log
	plCfg.Ack = func(l contract.LSN) { cur.Load().Ack(l) }
	plCfg.Registerer = c.opts.Registerer
	pipe, err = NewPipeline(plCfg, app, db, app.Stats)
	if err != nil {
		return nil, nil, err
	}
	return app, pipe, nil
}

// errPartEnded stands for a part that returned nil: the others stop too.
var errPartEnded = errors.New("a part ended")

// runParts runs the appender, the progress writer and the source on
// contexts of their own: ctx's end starts a graceful drain (Options.Grace),
// which stops the source first and the appender and progress writer last;
// any part's end stops the others. It returns the first failure, else the
// drain's *GraceError, else nil.
func (c *Capture) runParts(ctx context.Context, app *store.Appender, pipe *Pipeline, pgCfg postgres.Config, cur *atomic.Pointer[postgres.Source]) error {
	partsCtx, cancelParts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelParts()
	g, ended := errgroup.WithContext(partsCtx)
	srcCtx, cancelSrc := context.WithCancel(ended)
	defer cancelSrc()
	srcDone := make(chan struct{})
	var (
		mu    sync.Mutex
		first error // the first failure; a part ending without one stops the others too
	)
	part := func(name string, run func() error) func() error {
		return func() error {
			// The appender's ErrClosed after a cancel is not a failure of its own.
			if err := run(); err != nil && !errors.Is(err, store.ErrClosed) && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("%s: %w", name, err)
				}
				mu.Unlock()
			}
			return errPartEnded
		}
	}
	g.Go(part("store", func() error { return app.Run(ended) }))
	g.Go(part("progress", func() error { return pipe.Run(ended) }))
	g.Go(part("capture", func() error {
		defer close(srcDone)
		return runSource(srcCtx, cur.Load(), pgCfg, pipe, cur, c.log)
	}))
	var graceErr error
	select {
	case <-ended.Done():
	case <-ctx.Done():
		if !c.now.Load() {
			graceErr = drain(cur, pipe, c.opts.Grace, ended.Done(), srcDone, cancelSrc, c.log)
		}
	}
	cancelParts()
	waited := make(chan struct{})
	go func() { _ = g.Wait(); close(waited) }() // errPartEnded: every part returns it
	select {
	case <-waited:
	case <-time.After(partsStopWait):
		// The official store client holds calls in its discovery loop,
		// whatever their context says, while the store is unreachable: a
		// part waiting on it never returns. Its work is not confirmed, so
		// leaving it loses nothing; the process is about to stop.
		c.log.Warn("capture: a part did not stop within its bound (a store call held while the store is unreachable); leaving it", "bound", partsStopWait)
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return first
	}
	return graceErr
}

// partsStopWait bounds how long Run waits for its parts once they were
// told to stop.
const partsStopWait = 10 * time.Second

// runSource runs src. When it fails because the slot is held by another
// process, it starts a new Source after a pause, for up to slotWait in all:
// a walsender of a killed instance can take the slot after WaitSlotFree saw
// it free (the instance was killed while starting to stream), and
// capture/postgres treats a busy slot on its first session as fatal. The
// pipeline has nothing in flight from a Source that failed this way: it
// never delivered a transaction.
func runSource(ctx context.Context, src *postgres.Source, cfg postgres.Config, sink postgres.Sink, cur *atomic.Pointer[postgres.Source], log *slog.Logger) error {
	var waited time.Duration
	for {
		err := src.Run(ctx, sink)
		var busy *postgres.SlotInUseError
		if !errors.As(err, &busy) || waited >= slotWait || ctx.Err() != nil {
			return err
		}
		log.Info("replication slot is held by another process; starting capture again shortly", "slot", busy.Slot, "pid", busy.PID, "waited", waited)
		if !retry.Sleep(ctx, time.Second) {
			return nil
		}
		waited += time.Second
		cfg.Tables = cur.Load().Tables() // with those a reload added
		if src, err = postgres.New(cfg, log); err != nil {
			return err
		}
		cur.Store(src)
	}
}

// replacing is a Registerer that replaces an already registered collector
// of the same description instead of failing.
type replacing struct{ prometheus.Registerer }

func (r replacing) Register(c prometheus.Collector) error {
	err := r.Registerer.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		r.Registerer.Unregister(are.ExistingCollector)
		return r.Registerer.Register(c)
	}
	return err
}

func (r replacing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}
