package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// DefaultFile is read when no --config is given and it exists.
const DefaultFile = "chronicler.yaml"

// EnvPrefix starts every environment override.
const EnvPrefix = "CHRONICLER_"

// Config is the file's content after environment overrides and secret
// files are applied. Fields left zero take the defaults documented in
// deploy/examples/chronicler.yaml; the ones a zero cannot express (on/off
// switches, addresses that may be disabled) are filled in by [Defaults].
type Config struct {
	Postgres   Postgres   `yaml:"postgres"`
	Snapshot   Snapshot   `yaml:"snapshot"`
	Store      Store      `yaml:"store"`
	Kafka      Kafka      `yaml:"kafka"`
	Rules      Rules      `yaml:"rules"`
	Delivery   Delivery   `yaml:"delivery"`
	DeadLetter DeadLetter `yaml:"deadletter"`
	HTTP       HTTP       `yaml:"http"`
	HA         HA         `yaml:"ha"`
	Shutdown   Shutdown   `yaml:"shutdown"`
	Log        Log        `yaml:"log"`

	// file is the config file's name ("" when from the environment alone).
	file string
}

// Postgres is the captured database.
type Postgres struct {
	URL               string   `yaml:"url"`
	Password          string   `yaml:"password" secret:"true"`
	PasswordFile      string   `yaml:"password_file"`
	Slot              string   `yaml:"slot"`
	Publication       string   `yaml:"publication"`
	Tables            []string `yaml:"tables"`
	AddMissingTables  bool     `yaml:"add_missing_tables"`
	OnMissingSlot     string   `yaml:"on_missing_slot"` // refuse (default), resnapshot
	NeedOldValues     []string `yaml:"need_old_values"`
	FailoverSlot      bool     `yaml:"failover_slot"`
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
	Username        string `yaml:"username"`
	Password        string `yaml:"password" secret:"true"`
	PasswordFile    string `yaml:"password_file"`
	OnConflict      string `yaml:"on_conflict"` // stop (default), reread
	BatchAppend     bool   `yaml:"batch_append"`
	MaxInFlight     int    `yaml:"max_in_flight"`
	MaxPendingBytes int    `yaml:"max_pending_bytes"`
	MaxBatchEvents  int    `yaml:"max_batch_events"`
	MaxBatchBytes   int    `yaml:"max_batch_bytes"`
}

// Kafka is where integration events go.
type Kafka struct {
	Brokers           []string `yaml:"brokers"`
	Compression       string   `yaml:"compression"`
	MaxRecordBytes    int      `yaml:"max_record_bytes"`
	CreateTopics      bool     `yaml:"create_topics"`
	Partitions        int32    `yaml:"partitions"`
	ReplicationFactor int16    `yaml:"replication_factor"`
	TLS               TLS      `yaml:"tls"`
	SASL              SASL     `yaml:"sasl"`
	// SchemaRegistry is where the promotion rules' schemas are registered.
	SchemaRegistry SchemaRegistry `yaml:"schema_registry"`
}

// TLS encrypts Kafka connections. Files are PEM.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL authenticates to Kafka.
type SASL struct {
	Mechanism    string `yaml:"mechanism"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password" secret:"true"`
	PasswordFile string `yaml:"password_file"`
	Token        string `yaml:"token" secret:"true"`
	TokenFile    string `yaml:"token_file"`
}

// SchemaRegistry is a Confluent-compatible schema registry: the promotion
// rules' schemas are registered there and their values framed with the
// schema's id. Off while URL is empty.
type SchemaRegistry struct {
	URL             string      `yaml:"url"`
	SubjectStrategy string      `yaml:"subject_strategy"` // topic (default), record, topic_record
	LookupOnly      bool        `yaml:"lookup_only"`
	Username        string      `yaml:"username"`
	Password        string      `yaml:"password" secret:"true"`
	PasswordFile    string      `yaml:"password_file"`
	Token           string      `yaml:"token" secret:"true"`
	TokenFile       string      `yaml:"token_file"`
	Timeout         string      `yaml:"timeout"`
	TLS             RegistryTLS `yaml:"tls"`
}

// RegistryTLS configures an https registry URL. Files are PEM.
type RegistryTLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Rules are the rule files.
type Rules struct {
	Paths          []string `yaml:"paths"`
	Reload         bool     `yaml:"reload"`
	ReloadInterval string   `yaml:"reload_interval"`
}

// Delivery is how the publisher writes to Kafka.
type Delivery struct {
	Mode                string `yaml:"mode"` // exactly_once (default), at_least_once
	PublisherID         string `yaml:"publisher_id"`
	CheckpointTopic     string `yaml:"checkpoint_topic"`
	BatchRecords        int    `yaml:"batch_records"`
	BatchInterval       string `yaml:"batch_interval"` // an upper bound: idle batches commit at once
	MaxOpenTransactions int    `yaml:"max_open_transactions"`
	OnMissingCheckpoint string `yaml:"on_missing_checkpoint"` // refuse (default), restart
}

// DeadLetter is where failing changes and events go.
type DeadLetter struct {
	Stream  string `yaml:"stream"`   // default chronicler-deadletter-<slot>
	Topic   string `yaml:"topic"`    // default chronicler.deadletter
	OnError string `yaml:"on_error"` // deadletter (default), stop
}

// HTTP is the operations listener.
type HTTP struct {
	Addr        string `yaml:"addr"`
	PProf       bool   `yaml:"pprof"`
	ReadyMaxLag string `yaml:"ready_max_lag"`
}

// HA elects one active instance per slot.
type HA struct {
	Enabled   bool   `yaml:"enabled"`
	LockKey   string `yaml:"lock_key"`
	Keepalive string `yaml:"keepalive"`
}

// Shutdown bounds a graceful stop.
type Shutdown struct {
	Grace string `yaml:"grace"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default), json
}

// Defaults is the configuration before the file and the environment.
func Defaults() Config {
	return Config{
		Postgres:   Postgres{OnMissingSlot: "refuse"},
		Snapshot:   Snapshot{Mode: "initial", ChunkRows: 10000},
		Store:      Store{OnConflict: "stop", BatchAppend: true},
		Kafka:      Kafka{Compression: "none", MaxRecordBytes: kafka.DefaultMaxRecordBytes, Partitions: 1, ReplicationFactor: -1, SchemaRegistry: SchemaRegistry{SubjectStrategy: "topic", Timeout: "10s"}},
		Rules:      Rules{Reload: true, ReloadInterval: "5s"},
		Delivery:   Delivery{Mode: "exactly_once", CheckpointTopic: kafka.DefaultCheckpointTopic, BatchRecords: 500, BatchInterval: "100ms", MaxOpenTransactions: 100000, OnMissingCheckpoint: "refuse"},
		DeadLetter: DeadLetter{Topic: publish.DefaultDeadLetterTopic, OnError: "deadletter"},
		HTTP:       HTTP{Addr: ":8080", ReadyMaxLag: "30s"},
		HA:         HA{Enabled: true, Keepalive: "5s"},
		Shutdown:   Shutdown{Grace: "25s"},
		Log:        Log{Level: "info", Format: "text"},
	}
}

// Parts says which parts of the pipeline a configuration must serve, so
// that validation asks only for what they need (kafka.brokers only with
// publishing, postgres only with capture or HA).
type Parts struct {
	Capture, Publish bool
}

// All is both parts.
var All = Parts{Capture: true, Publish: true}

// Load reads the file at path (empty: DefaultFile if it exists, else none),
// applies the process environment (an unknown CHRONICLER_* variable is an
// error) and secret files, and validates for parts.
func Load(path string, parts Parts) (*Config, error) {
	return LoadEnv(path, parts, Environ(os.Environ()))
}

// LoadEnv is Load with the environment given.
func LoadEnv(path string, parts Parts, env Environment) (*Config, error) {
	var src []byte
	if path == "" {
		if b, err := os.ReadFile(DefaultFile); err == nil {
			path, src = DefaultFile, b
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading config %s: %w", DefaultFile, err)
		}
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading config: %w (give an existing file with --config)", err)
		}
		src = b
	}
	return Parse(path, src, parts, env)
}

// Parse validates src as the content of the file named name (name "" and
// src nil: no file) with the environment env (nil: none).
func Parse(name string, src []byte, parts Parts, env Environment) (*Config, error) {
	c := Defaults()
	c.file = name
	v := newValidator(name)
	if len(src) > 0 && !decodeFile(src, &c, v) {
		return nil, errors.Join(v.errs...) // what the file says is unknown: nothing to validate
	}
	if env != nil {
		applyEnv(&c, env, v)
		unknownEnv(env, v)
	}
	c.readSecretFiles(v)
	c.validate(v, parts)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	c.resolvePaths()
	return &c, nil
}

// File is the config file's name, "" when the configuration came from the
// environment alone.
func (c *Config) File() string { return c.file }

// resolvePaths makes relative file paths relative to the config file.
func (c *Config) resolvePaths() {
	dir := filepath.Dir(c.file)
	if c.file == "" {
		return
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range c.Rules.Paths {
		abs(&c.Rules.Paths[i])
	}
	rt := &c.Kafka.SchemaRegistry.TLS
	for _, p := range []*string{&c.Kafka.TLS.CAFile, &c.Kafka.TLS.CertFile, &c.Kafka.TLS.KeyFile, &rt.CAFile, &rt.CertFile, &rt.KeyFile} {
		abs(p)
	}
}

// PartsFor is the Parts of a command's --only flag: "" for both, "capture"
// or "publish".
func PartsFor(only string) (Parts, error) {
	switch only {
	case "":
		return All, nil
	case "capture":
		return Parts{Capture: true}, nil
	case "publish":
		return Parts{Publish: true}, nil
	}
	return Parts{}, fmt.Errorf("--only %q: want capture or publish (or nothing for both)", only)
}
