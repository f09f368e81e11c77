package kafka

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrFenced is matched (errors.Is) by errors from a Writer that another
// instance with the same publisher identity has fenced. It is permanent: stop.
var ErrFenced = errors.New("publisher fenced: another instance with the same publisher id took over")

// fencedError wraps the broker's error so both ErrFenced and the kerr value match.
type fencedError struct{ cause error }

func (e *fencedError) Error() string   { return ErrFenced.Error() + ": " + e.cause.Error() }
func (e *fencedError) Unwrap() []error { return []error{ErrFenced, e.cause} }

// classify turns the broker's fencing answers into ErrFenced.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return &fencedError{cause: err}
	}
	return err
}

// UnreachableError: no broker of Brokers answered (refused, unresolvable,
// timed out, TLS or SASL failed before any request).
type UnreachableError struct {
	Brokers []string
	Cause   error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("kafka unreachable at %s: %v (check kafka.brokers, the network, and kafka.tls / kafka.sasl)", strings.Join(e.Brokers, ","), e.Cause)
}
func (e *UnreachableError) Unwrap() error { return e.Cause }
