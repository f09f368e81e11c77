package publish

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/publish/kafka/registry"
)

// DefaultDeadLetterTopic receives events a promotion failed on and records
// Kafka would reject.
const DefaultDeadLetterTopic = "chronicler.deadletter"

// Config configures a Publisher.
type Config struct {
	// Store is the KurrentDB client to subscribe with. Required.
	Store *store.Client
	// Rules are the promotion rules. Required, with at least one promotion rule.
	Rules *mapping.RuleSet
	// Kafka is the connection and delivery configuration. Required.
	Kafka kafka.ClusterConfig
	// Registry, when set, is the schema registry of the rules' schemas: Run
	// registers (or looks up) them before it starts and frames those rules'
	// values with their schema's id (registry.AppendFrame). Default nil:
	// values are plain JSON, still validated against their schemas.
	Registry *registry.Client
	// PublisherID identifies this publisher (checkpoint key, transactional.id
	// base). Required; letters, digits, '.', '_', '-'.
	PublisherID string
	// Mode is the delivery guarantee. Default kafka.ExactlyOnce.
	Mode kafka.Mode
	// CheckpointTopic. Default kafka.DefaultCheckpointTopic.
	CheckpointTopic string
	// DeadLetterTopic. Default DefaultDeadLetterTopic.
	DeadLetterTopic string
	// StopOnDeadLetter makes Run return a *DeadLetterError instead of
	// dead-lettering and going on. Default false.
	StopOnDeadLetter bool
	// BatchRecords is the most records in one Kafka transaction. Default 500.
	BatchRecords int
	// BatchInterval is the longest an event waits before its batch commits.
	// Default 100ms.
	BatchInterval time.Duration
	// FlushWhenIdle commits the open batch as soon as no further event is
	// queued from the subscription, instead of waiting for BatchInterval:
	// the lowest latency, with batches that grow under load (events that
	// arrive during a commit form the next one). Default false.
	FlushWhenIdle bool
	// MaxOpenTransactions bounds the source transactions buffered while
	// waiting for their progress marker; more is an error
	// (ErrTooManyOpenTransactions), not unbounded memory. Default 100000.
	MaxOpenTransactions int
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives counters. Default: none.
	Metrics *Metrics
	// OnMissingCheckpoint is what Run does when the checkpoint topic holds
	// no checkpoint although the store records that this publisher has
	// published. Default RefuseMissingCheckpoint.
	OnMissingCheckpoint MissingCheckpoint
	// Grace, when > 0, makes Run commit the open batch (the events handled
	// so far, or the commit under way) when ctx ends, within Grace; a batch
	// not committed by then is left (re-derived by the next run) and Run
	// returns a *GraceError. Default 0: the open batch is left at once.
	Grace time.Duration
}

func (c *Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("publish.store: a KurrentDB client is required"))
	}
	if c.Rules == nil {
		errs = append(errs, errors.New("publish.rules: a rule set is required"))
	} else if len(c.Rules.PromotionRules()) == 0 {
		errs = append(errs, fmt.Errorf("publish.rules: files %v have no promotion rules: add a promote: section", c.Rules.Files()))
	}
	errs = append(errs, c.Kafka.Validate("kafka")...)
	if c.BatchRecords < 0 {
		errs = append(errs, fmt.Errorf("publish.batchRecords %d: must be >= 1 (0 for the default 500)", c.BatchRecords))
	}
	if c.OnMissingCheckpoint != RefuseMissingCheckpoint && c.OnMissingCheckpoint != RestartMissingCheckpoint {
		errs = append(errs, fmt.Errorf("publish.onMissingCheckpoint %d: want RefuseMissingCheckpoint or RestartMissingCheckpoint", c.OnMissingCheckpoint))
	}
	if c.Grace < 0 {
		errs = append(errs, fmt.Errorf("publish.grace %s: must be >= 0", c.Grace))
	}
	if c.BatchInterval < 0 {
		errs = append(errs, fmt.Errorf("publish.batchInterval %s: must be > 0 (0 for the default 100ms)", c.BatchInterval))
	}
	if c.BatchRecords == 0 {
		c.BatchRecords = 500
	}
	if c.BatchInterval == 0 {
		c.BatchInterval = 100 * time.Millisecond
	}
	if c.MaxOpenTransactions <= 0 {
		c.MaxOpenTransactions = 100000
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetterTopic
	}
	if c.CheckpointTopic == "" {
		c.CheckpointTopic = kafka.DefaultCheckpointTopic
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}
