package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

func newRunCmd() *cobra.Command {
	var (
		file   string
		only   string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "run [--config FILE] [--only capture|publish]",
		Short: "Run the pipeline: Postgres to KurrentDB (capture) and KurrentDB to Kafka (publish)",
		Long: `Run reads the config (see deploy/examples/chronicler.yaml), captures the configured tables,
maps their changes by the capture rules into events stored in KurrentDB (confirming positions to
Postgres only once stored), and promotes stored events by the promotion rules into integration
events on Kafka. Both parts run by default; --only runs one of them (run every instance of a
slot with the same --only).

Without --config, ./chronicler.yaml is read if it exists, else the configuration comes from the
CHRONICLER_* environment alone.

Operations (http.addr, default :8080): /metrics, /healthz, /readyz ("active" or "standby"),
/debug/pprof/ with http.pprof. With ha.enabled (default), one instance per slot is active (a
Postgres advisory lock); the others wait as standbys and take over when it dies.

Signals: SIGTERM/SIGINT stop gracefully within shutdown.grace (no new changes are taken, stored
positions are confirmed to Postgres, the open Kafka batch is committed); a second signal exits at
once. SIGHUP reloads the rules and the config file's postgres.tables (a table added there is
captured from then on; also done when the files change, with rules.reload).

--dry-run runs capture's checks against the database and prints the statements run would execute
there (CREATE PUBLICATION, the slot's creation), changing nothing.

Exit codes: 0 stopped by a signal and drained (or snapshot mode initial_only finished);
1 the pipeline failed (the error names the table, stream, topic or rule), the HA lock was lost,
the graceful stop did not finish within shutdown.grace, or a second signal forced the exit;
2 invalid config or flags, or http.addr cannot be listened on.`,
		Example: `  chronicler run --config chronicler.yaml
  chronicler run --config chronicler.yaml --only capture
  CHRONICLER_POSTGRES_URL=postgres://chronicler@db:5432/app chronicler run
  kill -HUP $(pidof chronicler)    # reload the rules now`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, parts, err := loadConfig(cmd, file, only)
			if err != nil {
				return err
			}
			if dryRun {
				return dryRunCapture(cmd, cfg)
			}
			return runPipeline(cmd, cfg, parts)
		},
	}
	addConfigFlag(cmd, &file)
	cmd.Flags().StringVar(&only, "only", "", "run only this part: capture or publish (default both)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "run capture's checks and print the statements it would run in the database (publication, slot), changing nothing")
	return cmd
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// signals delivers the process's signals to a run: the first SIGINT/SIGTERM
// cancels ctx (a graceful stop), a second one exits at once with code 1;
// SIGHUP goes to hup (rule reload).
type signals struct {
	hup  chan os.Signal
	stop func()
}

func notifySignals(log *slog.Logger) (context.Context, *signals) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	hup := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			log.Info("signal received; stopping (send it again to exit at once)", "signal", s.String())
			cancel()
		case <-done:
			return
		}
		select {
		case <-sig:
			fmt.Fprintln(os.Stderr, "second signal: exiting at once")
			os.Exit(1)
		case <-done:
		}
	}()
	return ctx, &signals{hup: hup, stop: func() {
		signal.Stop(sig)
		signal.Stop(hup)
		close(done)
		cancel()
	}}
}

// dryRunCapture is `run --dry-run`: capture's checks against the database,
// and the DDL it would run there, printed; nothing is changed.
func dryRunCapture(cmd *cobra.Command, cfg *config.Config) error {
	log := newLogger(cfg, cmd.ErrOrStderr())
	pc := cfg.CaptureOptions(log, nil).Postgres
	pc.DryRun, pc.SnapshotState = true, postgres.NewMemorySnapshotState()
	src, err := postgres.New(pc, log)
	if err == nil {
		err = src.Run(cmd.Context(), nil)
	}
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "error: run --dry-run:", err)
		return exitError(1)
	}
	out := cmd.OutOrStdout()
	planned := src.Planned()
	if len(planned) == 0 {
		fmt.Fprintln(out, "dry run: the checks pass; nothing to create (the publication and the slot exist)")
		return nil
	}
	fmt.Fprintln(out, "dry run: the checks pass; chronicler run would run:")
	for _, s := range planned {
		fmt.Fprintf(out, "  %s;\n", s)
	}
	return nil
}
