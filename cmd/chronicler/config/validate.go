package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
)

// validator collects every problem, each placed at its line in the file or
// at the environment variable that set it.
type validator struct {
	file    string
	ast     *ast.File
	fromEnv map[string]string // setting path → environment variable
	failed  map[string]bool   // settings the file gave a value of the wrong type (already reported)
	errs    []error
}

func newValidator(file string) *validator {
	return &validator{file: file, fromEnv: map[string]string{}, failed: map[string]bool{}}
}

// at reports a problem at node n of the file.
func (v *validator) at(n ast.Node, path, format string, args ...any) {
	e := &Error{File: v.file, Path: path, Reason: fmt.Sprintf(format, args...)}
	if n != nil && n.GetToken() != nil && n.GetToken().Position != nil {
		e.Line, e.Col = n.GetToken().Position.Line, n.GetToken().Position.Column
	}
	v.errs = append(v.errs, e)
}

// decodeFailed reports a value the file gives that cannot be decoded; the
// setting keeps its default, and validation says nothing more about it.
func (v *validator) decodeFailed(n ast.Node, path, reason string) {
	v.at(n, path, "%s", reason)
	v.failed[path] = true
}

func (v *validator) bad(path, format string, args ...any) {
	e := &Error{File: v.file, Path: path, Reason: fmt.Sprintf(format, args...)}
	base := path
	if i := strings.IndexByte(base, '['); i >= 0 {
		base = base[:i]
	}
	if v.failed[path] || v.failed[base] {
		return
	}
	if name, ok := v.fromEnv[base]; ok {
		e.File, e.Env = "", name
	} else if v.ast != nil {
		if p, err := yaml.PathString("$." + path); err == nil {
			if n, err := p.FilterFile(v.ast); err == nil && n != nil && n.GetToken() != nil {
				e.Line, e.Col = n.GetToken().Position.Line, n.GetToken().Position.Column
			}
		}
	}
	v.errs = append(v.errs, e)
}

func identOK(s string) bool {
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

// SlotPattern is what postgres.slot and postgres.publication must match:
// Postgres's rule for replication slot names (lower-case letters, digits
// and '_', at most 63), and not starting with a digit. The Helm chart's
// values.schema.json uses the same pattern (a test in deploy/ compares them).
const SlotPattern = `^[a-z_][a-z0-9_]{0,62}$`

// identifier checks a slot or publication name: absent is "required".
func identifier(v *validator, path, s, what string) {
	switch {
	case s == "":
		v.bad(path, "required: %s", what)
	case !identOK(s):
		v.bad(path, "%q must be 1-63 lower-case letters, digits or '_', not starting with a digit", s)
	}
}

func oneOf(v *validator, path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	v.bad(path, "%q is not one of %s", got, strings.Join(allowed, ", "))
}

func (c *Config) validate(v *validator, parts Parts) {
	c.validatePostgres(v, parts)
	c.validateStore(v)
	c.validateKafka(v, parts)
	c.validateRest(v)
}

func (c *Config) validatePostgres(v *validator, parts Parts) {
	p := &c.Postgres
	needPG := parts.Capture || c.HA.Enabled
	if p.URL == "" {
		if needPG {
			v.bad("postgres.url", "required: the connection string of the captured database")
		}
	} else if err := (postgres.ConnSettings{URL: p.URL}).Validate(); err != nil {
		// The connections' own check (capture/postgres, which redacts the
		// password): what passes here, they accept.
		reason := err.Error()
		var ce *postgres.ConfigError
		if errors.As(err, &ce) {
			reason = ce.Reason
		}
		v.bad("postgres.url", "%s", reason)
	}
	if parts.Capture || (c.HA.Enabled && c.HA.LockKey == "") || (parts.Publish && c.Delivery.PublisherID == "") {
		identifier(v, "postgres.slot", p.Slot, "the logical replication slot's name, e.g. chronicler; there is no default")
	}
	if parts.Capture {
		identifier(v, "postgres.publication", p.Publication, "the publication's name, e.g. chronicler; there is no default")
		if len(p.Tables) == 0 {
			v.bad("postgres.tables", "required: at least one \"schema.table\"")
		}
	}
	for i, t := range p.Tables {
		if parts := strings.Split(t, "."); t == "" || len(parts) > 2 || parts[0] == "" || parts[len(parts)-1] == "" {
			v.bad(fmt.Sprintf("postgres.tables[%d]", i), "%q is not \"schema.table\"", t)
		}
	}
	oneOf(v, "postgres.on_missing_slot", p.OnMissingSlot, "refuse", "resnapshot")
	duration(v, "postgres.status_interval", p.StatusInterval)
	duration(v, "postgres.heartbeat_interval", p.HeartbeatInterval)

	oneOf(v, "snapshot.mode", c.Snapshot.Mode, "initial", "never", "initial_only")
	if c.Snapshot.MaxRowsPerSecond < 0 {
		v.bad("snapshot.max_rows_per_second", "%d must not be negative (0: no bound)", c.Snapshot.MaxRowsPerSecond)
	}
	if c.Snapshot.ChunkRows < 0 {
		v.bad("snapshot.chunk_rows", "%d must be positive (0: the default)", c.Snapshot.ChunkRows)
	}
}

func (c *Config) validateStore(v *validator) {
	s := &c.Store
	if s.URL == "" {
		v.bad("store.url", "required: the KurrentDB connection string (esdb://host:2113?tls=false, esdb+discover://...)")
	} else if err := store.ParseURL(s.URL); err != nil {
		var ue *store.URLError
		errors.As(err, &ue)
		v.bad("store.url", "%s", ue.Reason)
	}
	oneOf(v, "store.on_conflict", s.OnConflict, "stop", "reread")
	positive(v, "store.max_in_flight", s.MaxInFlight)
	positive(v, "store.max_pending_bytes", s.MaxPendingBytes)
	positive(v, "store.max_batch_events", s.MaxBatchEvents)
	positive(v, "store.max_batch_bytes", s.MaxBatchBytes)
}

func (c *Config) validateKafka(v *validator, parts Parts) {
	k := &c.Kafka
	if parts.Publish && len(k.Brokers) == 0 {
		v.bad("kafka.brokers", "required: at least one seed broker (host:port), or run with --only capture")
	}
	for i, b := range k.Brokers {
		if _, port, ok := strings.Cut(b, ":"); !ok || port == "" {
			v.bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q is not host:port", b)
		}
	}
	oneOf(v, "kafka.compression", k.Compression, "none", "gzip", "snappy", "lz4", "zstd")
	positive(v, "kafka.max_record_bytes", k.MaxRecordBytes)
	if k.Partitions < 1 {
		v.bad("kafka.partitions", "%d must be at least 1", k.Partitions)
	}
	if k.ReplicationFactor == 0 || k.ReplicationFactor < -1 {
		v.bad("kafka.replication_factor", "%d must be at least 1, or -1 for the broker's default", k.ReplicationFactor)
	}
	if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
		v.bad("kafka.tls.cert_file", "cert_file and key_file go together: set both or neither")
	}
	for path, f := range map[string]string{"kafka.tls.ca_file": k.TLS.CAFile, "kafka.tls.cert_file": k.TLS.CertFile, "kafka.tls.key_file": k.TLS.KeyFile} {
		if f != "" {
			if _, err := os.Stat(c.rel(f)); err != nil {
				v.bad(path, "%s: %v", f, errors.Unwrap(err))
			}
		}
	}
	switch k.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if k.SASL.Username == "" || k.SASL.Password == "" {
			v.bad("kafka.sasl.mechanism", "%s needs kafka.sasl.username and a password (kafka.sasl.password_file or CHRONICLER_KAFKA_SASL_PASSWORD)", k.SASL.Mechanism)
		}
	case "OAUTHBEARER":
		if k.SASL.Token == "" {
			v.bad("kafka.sasl.mechanism", "OAUTHBEARER needs a token (kafka.sasl.token_file or CHRONICLER_KAFKA_SASL_TOKEN)")
		}
	default:
		v.bad("kafka.sasl.mechanism", "%q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (or empty for none)", k.SASL.Mechanism)
	}
	c.validateRegistry(v)
}

// validateRest checks rules, delivery, deadletter, http, ha, shutdown and
// log.
func (c *Config) validateRest(v *validator) {
	if len(c.Rules.Paths) == 0 {
		v.bad("rules.paths", "required: at least one rule file or directory")
	}
	for i, rp := range c.Rules.Paths {
		if _, err := os.Stat(c.rel(rp)); err != nil {
			v.bad(fmt.Sprintf("rules.paths[%d]", i), "%s: %v (relative paths are resolved against the config file's directory)", rp, errors.Unwrap(err))
		}
	}
	duration(v, "rules.reload_interval", c.Rules.ReloadInterval)

	d := &c.Delivery
	oneOf(v, "delivery.mode", d.Mode, "exactly_once", "at_least_once")
	if d.PublisherID != "" && strings.Trim(d.PublisherID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		v.bad("delivery.publisher_id", "%q may hold only letters, digits, '.', '_' and '-'", d.PublisherID)
	}
	if d.CheckpointTopic == "" {
		v.bad("delivery.checkpoint_topic", "must not be empty")
	}
	positive(v, "delivery.batch_records", d.BatchRecords)
	duration(v, "delivery.batch_interval", d.BatchInterval)
	positive(v, "delivery.max_open_transactions", d.MaxOpenTransactions)
	oneOf(v, "delivery.on_missing_checkpoint", d.OnMissingCheckpoint, "refuse", "restart")

	oneOf(v, "deadletter.on_error", c.DeadLetter.OnError, "deadletter", "stop")
	if c.DeadLetter.Stream != "" && !strings.Contains(c.DeadLetter.Stream, "-") {
		v.bad("deadletter.stream", "%q has no '-': streams are <category>-<id>", c.DeadLetter.Stream)
	}
	if c.DeadLetter.Topic == "" {
		v.bad("deadletter.topic", "must not be empty")
	}

	if c.HTTP.Addr != "" {
		if _, port, ok := strings.Cut(c.HTTP.Addr, ":"); !ok || port == "" {
			v.bad("http.addr", "%q is not [host]:port (e.g. \":8080\"; empty disables the listener)", c.HTTP.Addr)
		}
	}
	duration(v, "http.ready_max_lag", c.HTTP.ReadyMaxLag)
	if (c.HTTP.TLS.CertFile == "") != (c.HTTP.TLS.KeyFile == "") {
		v.bad("http.tls", "cert_file and key_file go together (both to serve TLS, neither for plain HTTP)")
	}
	duration(v, "ha.keepalive", c.HA.Keepalive)
	duration(v, "shutdown.grace", c.Shutdown.Grace)
	oneOf(v, "log.level", strings.ToLower(c.Log.Level), "debug", "info", "warn", "error")
	oneOf(v, "log.format", c.Log.Format, "text", "json")
}

// rel resolves a path of the file against the file's directory.
func (c *Config) rel(p string) string {
	if c.file == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.file), p)
}

func positive(v *validator, path string, n int) {
	if n < 0 {
		v.bad(path, "%d must be positive (0: the default)", n)
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
