package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Mode is the delivery guarantee of a Writer.
type Mode int

const (
	// ExactlyOnce writes records and checkpoint in one Kafka transaction.
	ExactlyOnce Mode = iota
	// AtLeastOnce uses the idempotent producer and checkpoints after
	// acknowledgement, for clusters without transactions.
	AtLeastOnce
)

func (m Mode) String() string {
	switch m {
	case ExactlyOnce:
		return "exactly-once"
	case AtLeastOnce:
		return "at-least-once"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// DefaultCheckpointTopic is where publishers keep their checkpoints.
const DefaultCheckpointTopic = "chronicler.checkpoints"

// Config configures a Writer.
type Config struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// PublisherID identifies the publisher: the checkpoint's key and the base
	// of the transactional.id ("chronicler-<id>"). Two instances with the same
	// id fence each other. Required; letters, digits, '.', '_', '-'.
	PublisherID string
	// CheckpointTopic holds checkpoints. Default DefaultCheckpointTopic. It
	// is created (1 partition, compacted) if absent.
	CheckpointTopic string
	// CheckpointReplication is the replication factor used when creating the
	// checkpoint topic. Default -1 (the broker's default).
	CheckpointReplication int16
	// Mode is the delivery guarantee. Default ExactlyOnce.
	Mode Mode
	// ClientOpts are extra franz-go options (TLS, SASL, compression, ...).
	ClientOpts []kgo.Opt
	// Logger receives state changes. Default slog.Default().
	Logger *slog.Logger
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: at least one broker is required"))
	}
	if !idPattern.MatchString(c.PublisherID) {
		errs = append(errs, fmt.Errorf("publisher id %q: use 1-200 letters, digits, '.', '_' or '-'", c.PublisherID))
	}
	if c.Mode != ExactlyOnce && c.Mode != AtLeastOnce {
		errs = append(errs, fmt.Errorf("delivery mode %d: want exactly-once or at-least-once", int(c.Mode)))
	}
	if c.CheckpointTopic == "" {
		c.CheckpointTopic = DefaultCheckpointTopic
	}
	if c.CheckpointReplication == 0 {
		c.CheckpointReplication = -1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

// TransactionalID is the transactional.id a publisher id maps to.
func TransactionalID(publisherID string) string { return "chronicler-" + publisherID }
