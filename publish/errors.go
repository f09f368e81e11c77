package publish

import (
	"errors"
	"fmt"
)

// ErrUnknownPromotion is matched by Replay errors naming a promotion rule
// the rule files do not have.
var ErrUnknownPromotion = errors.New("unknown promotion rule")

// TopicError reports an integration or dead-letter topic that is missing
// (and CreateTopics is off) or could not be created.
type TopicError struct {
	Topic string
	Cause error
}

func (e *TopicError) Error() string {
	return fmt.Sprintf("kafka topic %s: %v (create it, or set kafka.createTopics with partitions and replication factor)", e.Topic, e.Cause)
}
func (e *TopicError) Unwrap() error { return e.Cause }

// DeadLetterError is returned by Run when StopOnDeadLetter is set and an
// event could not be promoted or its record would be too large.
type DeadLetterError struct {
	Stream   string
	EventID  string
	Rule     string
	Position uint64
	Cause    error
}

func (e *DeadLetterError) Error() string {
	return fmt.Sprintf("event %s in stream %s (position %d), rule %s: %v (stopping: publish.stopOnDeadLetter is set)", e.EventID, e.Stream, e.Position, e.Rule, e.Cause)
}
func (e *DeadLetterError) Unwrap() error { return e.Cause }

// ErrRecordTooLarge is the cause of a dead letter for a record over
// KafkaConfig.MaxRecordBytes.
var ErrRecordTooLarge = errors.New("record larger than kafka.maxRecordBytes")

// ErrTooManyOpenTransactions is returned by Run when more source
// transactions are buffered, waiting for a progress marker, than
// MaxOpenTransactions.
var ErrTooManyOpenTransactions = errors.New("too many incomplete source transactions buffered (is capture appending ChroniclerProgress markers?)")

// errSimulatedCrash, returned by a test's beforeEnd hook, makes Run return
// at once with the transaction open, as a crash would.
var errSimulatedCrash = errors.New("simulated crash before the transaction commits")
