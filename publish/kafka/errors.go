package kafka

import (
	"errors"

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
