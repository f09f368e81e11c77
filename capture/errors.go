package capture

import (
	"fmt"

	"github.com/chronicler-dev/chronicler/capture/store"
)

// ConfigError is one invalid pipeline setting.
type ConfigError struct {
	Field  string // e.g. "deadletter.stream"
	Reason string
}

func (e *ConfigError) Error() string { return "pipeline config " + e.Field + ": " + e.Reason }

// StopError is returned (from the Sink, so from Source.Run) when a rule
// fails or an event is too large and the policy is [OnErrorStop]. Cause is
// the *mapping.EvalError or *store.TooLargeError.
type StopError struct {
	Rule  string // the failing rule
	Table string // "schema.table" of the change ("" for messages)
	Pos   store.Pos
	Cause error
}

func (e *StopError) Error() string {
	return fmt.Sprintf("capture rule %s failed on a change of %s at %s and on_error is stop: %v (fix the rule or the row, or set on_error: deadletter)",
		e.Rule, e.Table, e.Pos, e.Cause)
}

func (e *StopError) Unwrap() error { return e.Cause }
