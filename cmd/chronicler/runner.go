package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/app"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/opsserver"
)

// runPipeline is `chronicler run`: the app (the one composition root) with
// the process's logger, metrics registry, HTTP listener and signals.
func runPipeline(cmd *cobra.Command, cfg *config.Config, parts config.Parts) error {
	log := newLogger(cfg, cmd.ErrOrStderr())
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctx, sigs := notifySignals(log)
	defer sigs.stop()

	a, err := app.New(cfg, app.Options{Parts: parts, Logger: log, Registerer: reg, Out: cmd.ErrOrStderr(), Reload: sigs.hup})
	if err != nil {
		log.Error("start", "err", err)
		fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
		return exitError(1)
	}
	defer a.Close()
	if cfg.HTTP.Addr != "" {
		certFile, keyFile := cfg.HTTPTLSFiles()
		srv, err := opsserver.New(opsserver.Config{Addr: cfg.HTTP.Addr, PProf: cfg.HTTP.PProf, CertFile: certFile, KeyFile: keyFile,
			Gatherer: reg, Health: a.Health, Ready: a.Ready, Logger: log})
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), err)
			return exitError(2)
		}
		sctx, stopSrv := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Run(sctx) }()
		defer func() { stopSrv(); <-done }()
		log.Info("http listening", "addr", srv.Addr(), "tls", certFile != "", "pprof", cfg.HTTP.PProf)
	}
	log.Info("chronicler starting", "version", versionString(), "parts", a.PartNames(), "ha", cfg.HA.Enabled)
	if code := a.Run(ctx); code != 0 {
		return exitError(code)
	}
	log.Info("chronicler stopped")
	return nil
}
