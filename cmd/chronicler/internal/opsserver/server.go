package opsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the listener.
type Config struct {
	// Addr is where to listen (":8080"). Required.
	Addr string
	// PProf serves /debug/pprof/. Default false.
	PProf bool
	// Gatherer is served on /metrics. Required.
	Gatherer prometheus.Gatherer
	// Health is nil while the process is alive and well. Required.
	Health func() error
	// Ready returns whether the instance is ready and the body: the role
	// ("active", "standby") when ready, the reason when not. Required.
	Ready func() (ready bool, body string)
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Server is the listener.
type Server struct {
	cfg Config
	ln  net.Listener
	srv *http.Server
}

// New validates cfg and listens on cfg.Addr.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Addr == "" {
		errs = append(errs, errors.New("opsserver: an address is required"))
	}
	if cfg.Gatherer == nil || cfg.Health == nil || cfg.Ready == nil {
		errs = append(errs, errors.New("opsserver: Gatherer, Health and Ready are required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, &ListenError{Addr: cfg.Addr, Err: err}
	}
	s := &Server{cfg: cfg, ln: ln}
	s.srv = &http.Server{Handler: Handler(cfg), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	return s, nil
}

// Addr is the address listened on (the port chosen, for ":0").
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http listener %s: %w", s.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
	}
	<-errc
	return nil
}

// Handler is the listener's handler (for tests and embedding).
func Handler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := cfg.Health(); err != nil {
			text(w, http.StatusServiceUnavailable, "failed: "+err.Error())
			return
		}
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, body := cfg.Ready()
		code := http.StatusOK
		if !ok {
			code = http.StatusServiceUnavailable
		}
		text(w, code, body)
	})
	if cfg.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}
