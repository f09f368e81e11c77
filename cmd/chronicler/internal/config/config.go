package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
)

// Config is the file's content. Zero values take the defaults documented in
// deploy/examples/chronicler.yaml.
type Config struct {
	Postgres   Postgres   `yaml:"postgres"`
	Store      Store      `yaml:"store"`
	Rules      Rules      `yaml:"rules"`
	DeadLetter DeadLetter `yaml:"deadletter"`
	Log        Log        `yaml:"log"`
	Metrics    Metrics    `yaml:"metrics"`

	file string
}

// Postgres is the captured database.
type Postgres struct {
	URL               string   `yaml:"url"`
	Slot              string   `yaml:"slot"`
	Publication       string   `yaml:"publication"`
	Tables            []string `yaml:"tables"`
	AddMissingTables  bool     `yaml:"add_missing_tables"`
	NeedOldValues     []string `yaml:"need_old_values"`
	Snapshot          Snapshot `yaml:"snapshot"`
	StatusInterval    string   `yaml:"status_interval"`
	HeartbeatInterval string   `yaml:"heartbeat_interval"`
}

// Snapshot is the initial snapshot.
type Snapshot struct {
	Mode      string `yaml:"mode"` // initial (default), never, initial_only
	ChunkRows int    `yaml:"chunk_rows"`
}

// Store is KurrentDB.
type Store struct {
	URL             string `yaml:"url"`
	OnConflict      string `yaml:"on_conflict"` // stop (default), reread
	MaxInFlight     int    `yaml:"max_in_flight"`
	MaxPendingBytes int    `yaml:"max_pending_bytes"`
	MaxBatchEvents  int    `yaml:"max_batch_events"`
	MaxBatchBytes   int    `yaml:"max_batch_bytes"`
}

// Rules are the rule files.
type Rules struct {
	Paths []string `yaml:"paths"`
}

// DeadLetter is where failing changes go.
type DeadLetter struct {
	Stream  string `yaml:"stream"`   // default chronicler-deadletter-<slot>
	OnError string `yaml:"on_error"` // deadletter (default), stop
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default), json
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Addr string `yaml:"addr"` // host:port serving /metrics; "" (default): none
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, src)
}

// Parse validates src as the content of the file named name.
func Parse(name string, src []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalWithOptions(src, &c, yaml.DisallowUnknownField()); err != nil {
		// Without the source excerpt: it could show a password in a URL.
		return nil, fmt.Errorf("%s: %s (see deploy/examples/chronicler.yaml for the format)", name, yaml.FormatError(err, false, false))
	}
	c.file = name
	f, _ := parser.ParseBytes(src, 0)
	v := &validator{file: name, ast: f}
	c.validate(v)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	dir := filepath.Dir(name)
	for i, p := range c.Rules.Paths {
		if !filepath.IsAbs(p) {
			c.Rules.Paths[i] = filepath.Join(dir, p)
		}
	}
	return &c, nil
}

type validator struct {
	file string
	ast  *ast.File
	errs []error
}

func (v *validator) bad(path, format string, args ...any) {
	e := &Error{File: v.file, Path: path, Reason: fmt.Sprintf(format, args...)}
	if v.ast != nil {
		if p, err := yaml.PathString("$." + path); err == nil {
			if n, err := p.FilterFile(v.ast); err == nil && n != nil && n.GetToken() != nil {
				e.Line, e.Col = n.GetToken().Position.Line, n.GetToken().Position.Column
			}
		}
	}
	v.errs = append(v.errs, e)
}

var identOK = func(s string) bool {
	if s == "" || len(s) > 63 || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

func (c *Config) validate(v *validator) {
	p := &c.Postgres
	if p.URL == "" {
		v.bad("postgres.url", "required: the connection string of the captured database")
	} else if _, err := pgconn.ParseConfig(p.URL); err != nil {
		v.bad("postgres.url", "not a valid connection string: %v", err) // pgconn redacts the password
	}
	if !identOK(p.Slot) {
		v.bad("postgres.slot", "%q must be 1-63 lower-case letters, digits or '_', not starting with a digit", p.Slot)
	}
	if !identOK(p.Publication) {
		v.bad("postgres.publication", "%q must be 1-63 lower-case letters, digits or '_', not starting with a digit", p.Publication)
	}
	if len(p.Tables) == 0 {
		v.bad("postgres.tables", "required: at least one \"schema.table\"")
	}
	for i, t := range p.Tables {
		if parts := strings.Split(t, "."); t == "" || len(parts) > 2 || parts[0] == "" || parts[len(parts)-1] == "" {
			v.bad(fmt.Sprintf("postgres.tables[%d]", i), "%q is not \"schema.table\"", t)
		}
	}
	switch p.Snapshot.Mode {
	case "", "initial", "never", "initial_only":
	default:
		v.bad("postgres.snapshot.mode", "%q is not one of initial, never, initial_only", p.Snapshot.Mode)
	}
	if p.Snapshot.ChunkRows < 0 {
		v.bad("postgres.snapshot.chunk_rows", "%d must be positive", p.Snapshot.ChunkRows)
	}
	duration(v, "postgres.status_interval", p.StatusInterval)
	duration(v, "postgres.heartbeat_interval", p.HeartbeatInterval)

	s := &c.Store
	if s.URL == "" {
		v.bad("store.url", "required: the KurrentDB connection string (esdb://host:2113?tls=false, esdb+discover://...)")
	} else if _, err := esdb.ParseConnectionString(s.URL); err != nil {
		v.bad("store.url", "not a valid KurrentDB connection string: %v", redact(err.Error(), s.URL))
	}
	switch s.OnConflict {
	case "", "stop", "reread":
	default:
		v.bad("store.on_conflict", "%q is not one of stop, reread", s.OnConflict)
	}
	for name, n := range map[string]int{"max_in_flight": s.MaxInFlight, "max_pending_bytes": s.MaxPendingBytes, "max_batch_events": s.MaxBatchEvents, "max_batch_bytes": s.MaxBatchBytes} {
		if n < 0 {
			v.bad("store."+name, "%d must be positive (0: the default)", n)
		}
	}

	if len(c.Rules.Paths) == 0 {
		v.bad("rules.paths", "required: at least one rule file or directory")
	}
	dir := filepath.Dir(v.file)
	for i, rp := range c.Rules.Paths {
		full := rp
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, rp)
		}
		if _, err := os.Stat(full); err != nil {
			v.bad(fmt.Sprintf("rules.paths[%d]", i), "%s: %v (relative paths are resolved against the config file's directory)", rp, errors.Unwrap(err))
		}
	}
	switch c.DeadLetter.OnError {
	case "", "deadletter", "stop":
	default:
		v.bad("deadletter.on_error", "%q is not one of deadletter, stop", c.DeadLetter.OnError)
	}
	if c.DeadLetter.Stream != "" && !strings.Contains(c.DeadLetter.Stream, "-") {
		v.bad("deadletter.stream", "%q has no '-': streams are <category>-<id>", c.DeadLetter.Stream)
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "error":
	default:
		v.bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		v.bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
}

func duration(v *validator, path, s string) {
	if s == "" {
		return
	}
	if d, err := time.ParseDuration(s); err != nil || d <= 0 {
		v.bad(path, "%q is not a positive duration (e.g. 1s, 500ms)", s)
	}
}

// redact removes the URL (which may hold credentials) from an error text.
func redact(msg, url string) string {
	if url == "" {
		return msg
	}
	return strings.ReplaceAll(msg, url, "<store.url>")
}

// LogLevel returns the configured level.
func (c *Config) LogLevel() slog.Level {
	switch strings.ToLower(c.Log.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// CaptureOptions turns the configuration into capture.Run's options.
func (c *Config) CaptureOptions(log *slog.Logger, reg prometheus.Registerer) capture.Options {
	p := c.Postgres
	dur := func(s string) time.Duration { d, _ := time.ParseDuration(s); return d }
	onConflict := store.ConflictStop
	if c.Store.OnConflict == "reread" {
		onConflict = store.ConflictReread
	}
	return capture.Options{
		Postgres: postgres.Config{
			URL:               p.URL,
			Slot:              p.Slot,
			Publication:       p.Publication,
			Tables:            append([]string(nil), p.Tables...),
			AddMissingTables:  p.AddMissingTables,
			NeedOldValues:     append([]string(nil), p.NeedOldValues...),
			SnapshotMode:      postgres.SnapshotMode(p.Snapshot.Mode),
			SnapshotChunkRows: p.Snapshot.ChunkRows,
			StatusInterval:    dur(p.StatusInterval),
			HeartbeatInterval: dur(p.HeartbeatInterval),
		},
		StoreURL: c.Store.URL,
		Store: store.Config{
			OnConflict:      onConflict,
			MaxInFlight:     c.Store.MaxInFlight,
			MaxPendingBytes: c.Store.MaxPendingBytes,
			MaxBatchEvents:  c.Store.MaxBatchEvents,
			MaxBatchBytes:   c.Store.MaxBatchBytes,
		},
		RulePaths: append([]string(nil), c.Rules.Paths...),
		Pipeline: capture.Config{
			DeadLetterStream: c.DeadLetter.Stream,
			OnError:          capture.ErrorPolicy(c.DeadLetter.OnError),
		},
		Registerer: reg,
		Logger:     log,
	}
}
