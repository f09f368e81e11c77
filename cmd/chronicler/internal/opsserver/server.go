package opsserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
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
	// CertFile and KeyFile, both set, serve HTTPS with this certificate
	// (PEM), re-read at the next handshake after either file changes (a
	// renewed certificate needs no restart). Default "": plain HTTP.
	CertFile, KeyFile string
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
	var certs *certReloader
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		certs = &certReloader{certFile: cfg.CertFile, keyFile: cfg.KeyFile}
		if _, err := certs.get(nil); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, &ListenError{Addr: cfg.Addr, Err: err}
	}
	if certs != nil {
		ln = tls.NewListener(ln, &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12})
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

// certReloader serves the certificate of its files, loaded again when
// either file's modification time or size changes.
type certReloader struct {
	certFile, keyFile string

	mu    sync.Mutex
	stamp [2]fileStamp
	cert  *tls.Certificate
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// get is tls.Config.GetCertificate. A certificate that no longer loads
// (a half-written renewal) keeps the last good one.
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var now [2]fileStamp
	var err error
	if now[0], err = stampOf(r.certFile); err == nil {
		now[1], err = stampOf(r.keyFile)
	}
	if err == nil && r.cert != nil && now == r.stamp {
		return r.cert, nil
	}
	if err == nil {
		var c tls.Certificate
		if c, err = tls.LoadX509KeyPair(r.certFile, r.keyFile); err == nil {
			r.cert, r.stamp = &c, now
			return r.cert, nil
		}
	}
	if r.cert != nil {
		return r.cert, nil
	}
	return nil, fmt.Errorf("http.tls.cert_file %s and key_file %s: %w", r.certFile, r.keyFile, err)
}
