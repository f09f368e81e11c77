package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/config"
)

func newRunCmd() *cobra.Command {
	var (
		file string
		only string
	)
	cmd := &cobra.Command{
		Use:   "run [--config FILE]",
		Short: "Run the pipeline: capture changes from Postgres into KurrentDB",
		Long: "Run reads the config file (see deploy/examples/chronicler.yaml), captures the configured tables,\n" +
			"maps their changes by the rules and stores the events in KurrentDB, confirming positions to\n" +
			"Postgres only once stored. Publishing to Kafka is not wired into run yet: --only capture is the\n" +
			"only part, and the default.\n\n" +
			"SIGINT/SIGTERM stop it gracefully; a second signal exits at once (code 1).\n" +
			"Exit codes: 0 stopped by a signal (or snapshot mode initial_only finished); 1 the pipeline failed (the error names the table, stream or\n" +
			"rule) or a second signal forced the exit; 2 invalid config or flags.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if only != "" && only != "capture" {
				return fmt.Errorf("run: --only %q: the only part that exists is \"capture\"", only)
			}
			cfg, err := config.Load(file, config.Parts{Capture: true})
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError(2)
			}
			return runPipeline(cmd, cfg)
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "the config file (YAML)")
	cmd.Flags().StringVar(&only, "only", "", "run only this part: capture")
	return cmd
}

func runPipeline(cmd *cobra.Command, cfg *config.Config) error {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel()}
	var h slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(cmd.ErrOrStderr(), opts)
	}
	log := slog.New(h)

	ctx, stop := signalContext(log)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.HTTP.Addr != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Addr)
		if err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "http.addr %s: %v (set another port, or \"\" to disable)\n", cfg.HTTP.Addr, err)
			return exitError(2)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		log.Info("metrics listening", "addr", ln.Addr().String())
	}

	log.Info("chronicler starting", "version", versionString(), "parts", "capture")
	if err := capture.Run(ctx, cfg.CaptureOptions(log, reg)); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
		return exitError(1)
	}
	log.Info("chronicler stopped")
	return nil
}

// signalContext is cancelled by the first SIGINT/SIGTERM; a second one
// exits the process at once with code 1.
func signalContext(log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
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
	return ctx, func() {
		signal.Stop(sig)
		close(done)
		cancel()
	}
}
