package publish

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnknownPromotion is matched by Replay errors naming a promotion rule
// the rule files do not have.
var ErrUnknownPromotion = errors.New("unknown promotion rule")

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
// kafka.ClusterConfig.MaxRecordBytes.
var ErrRecordTooLarge = errors.New("record larger than kafka.maxRecordBytes")

// ErrTooManyOpenTransactions is returned by Run when more source
// transactions are buffered, waiting for a progress marker, than
// MaxOpenTransactions.
var ErrTooManyOpenTransactions = errors.New("too many incomplete source transactions buffered (is capture appending ChroniclerProgress markers?)")

// ErrGraceExpired is matched (errors.Is) by a *GraceError.
var ErrGraceExpired = errors.New("graceful stop did not finish within the grace period")

// GraceError is returned by Run when the open batch could not be committed
// within Config.Grace after ctx ended. Its events are read again and
// published by the next run (exactly once in exactly_once mode): nothing is
// lost.
type GraceError struct {
	Grace   time.Duration
	Records int // records of the batch left uncommitted
	Err     error
}

func (e *GraceError) Error() string {
	return fmt.Sprintf("publish: the open batch (%d records) was not committed within the grace of %s: %v; the next run publishes it again, nothing is lost (raise shutdown.grace, or check Kafka)",
		e.Records, e.Grace, e.Err)
}

func (e *GraceError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrGraceExpired) true.
func (e *GraceError) Is(target error) bool { return target == ErrGraceExpired }
