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

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/capture/store"
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
	// Control, when set, is attached to this Run: status and rule reloads.
	Control *Control
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

// Run wires the source, the rules, the appender and the pipeline and runs
// them until ctx is cancelled (it returns nil) or one of them fails (it
// returns that error; the others are stopped and waited for). The rules are
// loaded after the catalogue is read from the database, so a rule that reads
// a column that does not exist fails here, before anything is captured.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(opts.RulePaths) == 0 {
		return &ConfigError{Field: "rules.paths", Reason: "required: at least one rule file or directory"}
	}
	db, err := store.Connect(store.ClientConfig{URL: opts.StoreURL, Username: opts.StoreUsername, Password: opts.StorePassword, Logger: log})
	if err != nil {
		var ue *store.URLError
		if errors.As(err, &ue) {
			return &ConfigError{Field: "store.url", Reason: ue.Reason}
		}
		return err
	}
	defer db.Close()

	pgCfg := opts.Postgres
	if pgCfg.SnapshotState == nil {
		pgCfg.SnapshotState = NewStoreSnapshotState(db, log)
	}
	if pgCfg.Registerer == nil {
		pgCfg.Registerer = opts.Registerer
	}
	if pgCfg.Registerer != nil {
		// A Source replaced after a busy slot (runSource) registers its
		// metrics again.
		pgCfg.Registerer = replacing{pgCfg.Registerer}
	}
	src, err := postgres.New(pgCfg, log)
	if err != nil {
		return err
	}
	cat, err := src.Catalog(ctx)
	if err != nil {
		if ctx.Err() != nil { // stopped during start-up: not a failure
			return nil
		}
		return fmt.Errorf("reading the captured tables' columns: %w", err)
	}
	mcat := Catalogue(cat)
	rules, err := loadRules(opts.RulePaths, mcat)
	if err != nil {
		return err
	}
	log.Info("rules loaded", "files", len(rules.Files()), "capture_rules", len(rules.CaptureRules()))

	var pipe *Pipeline // set before the appender runs, so before OnDurable
	stCfg := opts.Store
	stCfg.Slot = pgCfg.Slot
	stCfg.OnDurable = func(l contract.LSN) { pipe.Durable(l) }
	stCfg.Logger = log
	stCfg.BatchAppend = stCfg.BatchAppend || opts.BatchAppend
	app, err := store.New(db, stCfg)
	if err != nil {
		return err
	}
	plCfg := opts.Pipeline
	var cur atomic.Pointer[postgres.Source] // the running Source (replaced after a busy slot)
	cur.Store(src)
	plCfg.Slot, plCfg.Rules, plCfg.Logger = pgCfg.Slot, rules, log
	plCfg.Ack = func(l contract.LSN) { cur.Load().Ack(l) }
	plCfg.Registerer = opts.Registerer
	pipe, err = NewPipeline(plCfg, app, db, app.Stats)
	if err != nil {
		return err
	}

	if err := src.WaitSlotFree(ctx, slotWait); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	// The parts run on contexts of their own: ctx's end starts a graceful
	// drain (Options.Grace), which stops the source first and the appender
	// and progress writer last.
	partsCtx, cancelParts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelParts()
	srcCtx, cancelSrc := context.WithCancel(partsCtx)
	defer cancelSrc()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		first   error
		once    sync.Once
		ended   = make(chan struct{}) // closed when any part returned
		srcDone = make(chan struct{})
	)
	fail := func(part string, err error) {
		mu.Lock()
		if err != nil && first == nil {
			first = fmt.Errorf("%s: %w", part, err)
		}
		mu.Unlock()
		once.Do(func() { close(ended) })
	}
	wg.Add(3)
	go func() { defer wg.Done(); fail("store", app.Run(partsCtx)) }()
	go func() { defer wg.Done(); fail("progress", pipe.Run(partsCtx)) }()
	go func() {
		defer wg.Done()
		defer close(srcDone)
		fail("capture", runSource(srcCtx, src, pgCfg, pipe, &cur, log))
	}()
	if opts.Control != nil {
		opts.Control.attach(pipe, &cur, mcat)
		defer opts.Control.detach()
	}
	log.Info("capture running", "slot", pgCfg.Slot, "tables", pgCfg.Tables, "deadletter_stream", pipe.cfg.DeadLetterStream, "progress_stream", pipe.progressStream)
	var graceErr error
	select {
	case <-ended:
	case <-ctx.Done():
		graceErr = drain(&cur, pipe, opts.Grace, ended, srcDone, cancelSrc, log)
	}
	cancelParts()
	wg.Wait()
	// The appender's ErrClosed after a cancel is not a failure of its own.
	if errors.Is(first, store.ErrClosed) || errors.Is(first, context.Canceled) {
		mu.Lock()
		first = nil
		mu.Unlock()
	}
	if first == nil {
		first = graceErr
	}
	st := pipe.Stats()
	log.Info("capture stopped", "durable_lsn", app.Durable().String(), "mapped", st.Mapped, "unmatched", st.Unmatched, "deadlettered", st.DeadLettered, "err", first)
	return first
}

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
