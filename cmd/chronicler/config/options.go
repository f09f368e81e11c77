package config

import (
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// dur parses a validated duration ("" is 0: the default downstream).
func dur(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}

// ReloadInterval is rules.reload_interval.
func (c *Config) ReloadInterval() time.Duration { return dur(c.Rules.ReloadInterval) }

// ReadyMaxLag is http.ready_max_lag.
func (c *Config) ReadyMaxLag() time.Duration { return dur(c.HTTP.ReadyMaxLag) }

// HAKeepalive is ha.keepalive.
func (c *Config) HAKeepalive() time.Duration { return dur(c.HA.Keepalive) }

// ShutdownGrace is shutdown.grace.
func (c *Config) ShutdownGrace() time.Duration { return dur(c.Shutdown.Grace) }

// PublisherID is delivery.publisher_id, default postgres.slot.
func (c *Config) PublisherID() string {
	if c.Delivery.PublisherID != "" {
		return c.Delivery.PublisherID
	}
	return c.Postgres.Slot
}

// LockKey is ha.lock_key, default "chronicler/<slot>".
func (c *Config) LockKey() string {
	if c.HA.LockKey != "" {
		return c.HA.LockKey
	}
	return "chronicler/" + c.Postgres.Slot
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
	onConflict := store.ConflictStop
	if c.Store.OnConflict == "reread" {
		onConflict = store.ConflictReread
	}
	return capture.Options{
		Postgres: postgres.Config{
			URL:               p.URL,
			Password:          p.Password,
			Slot:              p.Slot,
			Publication:       p.Publication,
			Tables:            append([]string(nil), p.Tables...),
			AddMissingTables:  p.AddMissingTables,
			OnMissingSlot:     postgres.MissingSlotPolicy(p.OnMissingSlot),
			NeedOldValues:     append([]string(nil), p.NeedOldValues...),
			FailoverSlot:      p.FailoverSlot,
			SnapshotMode:      postgres.SnapshotMode(c.Snapshot.Mode),
			SnapshotChunkRows: c.Snapshot.ChunkRows,
			StatusInterval:    dur(p.StatusInterval),
			HeartbeatInterval: dur(p.HeartbeatInterval),
		},
		StoreURL:      c.Store.URL,
		StoreUsername: c.Store.Username,
		StorePassword: c.Store.Password,
		BatchAppend:   c.Store.BatchAppend,
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

// StoreClient is how to reach the store: store.url, with store.username
// and store.password (when set) replacing the URL's credentials
// (store.Connect applies them).
func (c *Config) StoreClient() store.ClientConfig {
	return store.ClientConfig{URL: c.Store.URL, Username: c.Store.Username, Password: c.Store.Password}
}

// KafkaConfig is the publisher's connection and topic configuration.
func (c *Config) KafkaConfig() kafka.ClusterConfig {
	k := c.Kafka
	return kafka.ClusterConfig{
		Brokers:           append([]string(nil), k.Brokers...),
		Compression:       k.Compression,
		MaxRecordBytes:    k.MaxRecordBytes,
		CreateTopics:      k.CreateTopics,
		Partitions:        k.Partitions,
		ReplicationFactor: k.ReplicationFactor,
		TLS: kafka.TLSConfig{
			Enabled:            k.TLS.Enabled,
			CAFile:             k.TLS.CAFile,
			CertFile:           k.TLS.CertFile,
			KeyFile:            k.TLS.KeyFile,
			ServerName:         k.TLS.ServerName,
			InsecureSkipVerify: k.TLS.InsecureSkipVerify,
		},
		SASL: kafka.SASLConfig{Mechanism: k.SASL.Mechanism, User: k.SASL.Username, Password: k.SASL.Password, Token: k.SASL.Token},
	}
}

// PublishConfig is the publisher's configuration without its store client,
// rule set, logger and metrics, which the caller provides.
func (c *Config) PublishConfig() publish.Config {
	mode := kafka.ExactlyOnce
	if c.Delivery.Mode == "at_least_once" {
		mode = kafka.AtLeastOnce
	}
	missing := publish.RefuseMissingCheckpoint
	if c.Delivery.OnMissingCheckpoint == "restart" {
		missing = publish.RestartMissingCheckpoint
	}
	return publish.Config{
		Kafka:               c.KafkaConfig(),
		PublisherID:         c.PublisherID(),
		Mode:                mode,
		CheckpointTopic:     c.Delivery.CheckpointTopic,
		DeadLetterTopic:     c.DeadLetter.Topic,
		StopOnDeadLetter:    c.DeadLetter.OnError == "stop",
		BatchRecords:        c.Delivery.BatchRecords,
		BatchInterval:       dur(c.Delivery.BatchInterval),
		FlushWhenIdle:       true,
		MaxOpenTransactions: c.Delivery.MaxOpenTransactions,
		OnMissingCheckpoint: missing,
	}
}
