package reload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/mapping"
)

// ErrNotReady is returned (wrapped) by a Load that cannot check a set yet.
var ErrNotReady = errors.New("reload: the pipeline is not ready to check rules yet")

// Config configures a Reloader.
type Config struct {
	// Paths are the rule files and directories (rules.paths). Required.
	Paths []string
	// Also are more files whose content changes trigger a reload (the
	// configuration file, whose postgres.tables a reload applies); they are
	// hashed with the rule files. Optional.
	Also []string
	// Interval is the polling period; 0 turns polling off (SIGHUP only).
	Interval time.Duration
	// Signals delivers SIGHUP (or anything meaning "reload now"). Optional.
	Signals <-chan os.Signal
	// Load loads and checks the rule files as at start. Required.
	Load func(paths []string) (*mapping.RuleSet, error)
	// Apply swaps a checked set into the running parts. Required.
	Apply func(*mapping.RuleSet) error
	// Registerer receives chronicler_rules_reloads_total and
	// chronicler_rules_info. Optional.
	Registerer prometheus.Registerer
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Reloader watches the rule files; see the package doc.
type Reloader struct {
	cfg     Config
	reloads *prometheus.CounterVec
	info    *prometheus.GaugeVec
	current string // hash of the set in force
	seen    string // hash last tried
}

// New validates cfg and hashes the rule files now: that content is taken as
// the set in force (the one the pipeline loaded at start).
func New(cfg Config) (*Reloader, error) {
	var errs []error
	if len(cfg.Paths) == 0 {
		errs = append(errs, errors.New("reload: rules.paths is empty"))
	}
	if cfg.Load == nil || cfg.Apply == nil {
		errs = append(errs, errors.New("reload: Load and Apply are required"))
	}
	if cfg.Interval < 0 {
		errs = append(errs, fmt.Errorf("rules.reload_interval %s: must be positive", cfg.Interval))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Reloader{
		cfg: cfg,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicler_rules_reloads_total",
			Help: "Rule reloads by result: ok (checked and swapped in), error (refused; the running set stays).",
		}, []string{"result"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chronicler_rules_info",
			Help: "The rule set in force, by content hash (value 1).",
		}, []string{"hash"}),
	}
	r.reloads.WithLabelValues("ok")
	r.reloads.WithLabelValues("error")
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(r.reloads); err != nil {
			return nil, err
		}
		if err := cfg.Registerer.Register(r.info); err != nil {
			return nil, err
		}
	}
	h, err := r.hash()
	if err != nil {
		return nil, err
	}
	r.current, r.seen = h, h
	r.info.WithLabelValues(short(h)).Set(1)
	return r, nil
}

// Run polls and listens for signals until ctx ends.
func (r *Reloader) Run(ctx context.Context) error {
	var tick <-chan time.Time
	if r.cfg.Interval > 0 {
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.cfg.Signals:
			r.cfg.Logger.Info("SIGHUP: reloading the rules")
			r.try(true)
		case <-tick:
			r.try(false)
		}
	}
}

// try reloads when forced or when the files' content changed since the
// last attempt.
func (r *Reloader) try(force bool) {
	h, err := r.hash()
	if err != nil {
		if force || r.seen != "unreadable" {
			r.refuse(err)
		}
		r.seen = "unreadable"
		return
	}
	if !force && h == r.seen {
		return
	}
	rs, err := r.cfg.Load(r.cfg.Paths)
	if errors.Is(err, ErrNotReady) {
		r.cfg.Logger.Info("rule reload postponed: the pipeline is still starting", "reason", err)
		return
	}
	r.seen = h
	if err == nil {
		err = r.cfg.Apply(rs)
	}
	var applied *AppliedError
	if err != nil && !errors.As(err, &applied) {
		r.refuse(err)
		return
	}
	if applied != nil {
		r.reloads.WithLabelValues("error").Inc()
		r.cfg.Logger.Error("rules reloaded, but what came with them failed; the new rules are in force (fix it; the files are checked again when they change or on SIGHUP)",
			"hash", short(h), "err", applied.Err)
	} else {
		r.reloads.WithLabelValues("ok").Inc()
	}
	r.info.Reset()
	r.info.WithLabelValues(short(h)).Set(1)
	r.cfg.Logger.Info("rules reloaded; the new set applies from the next transaction (capture) and batch (publish)",
		"hash", short(h), "previous", short(r.current), "files", len(rs.Files()), "capture_rules", len(rs.CaptureRules()), "promotion_rules", len(rs.PromotionRules()))
	r.current = h
}

// AppliedError is an Apply's error after it swapped the set in: the set is
// in force, and something that came with it failed (capture: adding the
// tables of postgres.tables). It is counted and logged as an error.
type AppliedError struct{ Err error }

func (e *AppliedError) Error() string { return e.Err.Error() }
func (e *AppliedError) Unwrap() error { return e.Err }

// hash is Hash of the rule paths and the Also files.
func (r *Reloader) hash() (string, error) {
	h, err := Hash(r.cfg.Paths)
	if err != nil || len(r.cfg.Also) == 0 {
		return h, err
	}
	sum := sha256.New()
	sum.Write([]byte(h))
	sum.Write([]byte{0})
	if err := hashFiles(sum, r.cfg.Also); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

func (r *Reloader) refuse(err error) {
	r.reloads.WithLabelValues("error").Inc()
	r.cfg.Logger.Error("rule reload refused; the running rules stay in force (fix the files; they are checked again when they change or on SIGHUP)",
		"hash_in_force", short(r.current), "err", err)
}

// Hash is the SHA-256 over the names and contents of the rule files in
// paths and of the schema files (*.json) beside them.
func Hash(paths []string) (string, error) {
	files, problems := mapping.RuleFiles(paths)
	if len(problems) > 0 {
		return "", fmt.Errorf("listing rule files %v: %s: %s", paths, problems[0].File, problems[0].Message)
	}
	files = append(files, mapping.SchemaFiles(paths)...)
	h := sha256.New()
	if err := hashFiles(h, files); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashFiles writes each file's name, length and content to h.
func hashFiles(h hash.Hash, files []string) error {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading a file the reload watches: %w", err) // the error names it
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	return nil
}

func short(h string) string { return h[:min(12, len(h))] }
