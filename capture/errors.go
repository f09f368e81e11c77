package capture

import (
	"errors"
	"fmt"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
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
	Pos   contract.Pos
	Cause error
}

func (e *StopError) Error() string {
	return fmt.Sprintf("capture rule %s failed on a change of %s at %s and on_error is stop: %v (fix the rule or the row, or set on_error: deadletter)",
		e.Rule, e.Table, e.Pos, e.Cause)
}

func (e *StopError) Unwrap() error { return e.Cause }

// ErrGraceExpired is matched (errors.Is) by a *GraceError.
var ErrGraceExpired = errors.New("graceful stop did not finish within the grace period")

// ErrNotRunning is returned by [Capture] methods before Run has read the
// catalogue and wired its parts, or after it returned.
var ErrNotRunning = errors.New("capture is not running")

// GraceError is returned by Run when a graceful stop (Options.Grace) did not
// finish in time: the transactions received after Confirmed were not
// confirmed to Postgres, so they are delivered again on the next start.
// Nothing is lost.
type GraceError struct {
	Grace     time.Duration
	Received  contract.LSN // highest commit LSN received
	Confirmed contract.LSN // highest commit LSN confirmed to Postgres
	Stage     string       // what was still under way: "taking the open transaction", "storing and confirming", "sending the last status"
}

func (e *GraceError) Error() string {
	return fmt.Sprintf("capture: graceful stop did not finish within %s (still %s): transactions up to %s were received, up to %s confirmed; "+
		"the rest is delivered again on the next start, nothing is lost (raise shutdown.grace if this happens at every stop)",
		e.Grace, e.Stage, e.Received, e.Confirmed)
}

// Is makes errors.Is(err, ErrGraceExpired) true.
func (e *GraceError) Is(target error) bool { return target == ErrGraceExpired }

// RulesError is returned by [Capture.LoadRules] for a rule set that does not
// fit what capture captures; mapping's own load errors are returned as they
// are (*mapping.LoadError, with file:line:col).
type RulesError struct {
	Pattern string   // the table or glob of a capture rule
	Tables  []string // the captured tables
}

func (e *RulesError) Error() string {
	return fmt.Sprintf("capture rules: table %s is not captured (postgres.tables: %v): add it to postgres.tables (a reload adds it while running), or change the rule",
		e.Pattern, e.Tables)
}
