package mapping

import (
	"errors"
	"fmt"
	"strings"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Problem is one thing wrong in a rule file, found at load time.
type Problem struct {
	File    string // path as given to Load (or found under a given directory)
	Line    int    // 1-based; 0 when the problem concerns the whole file
	Col     int    // 1-based; 0 when unknown
	Rule    string // rule name, "" when the problem is outside a rule
	Message string // what is wrong
	Hint    string // what to do about it, "" when there is nothing to add
}

// String formats the problem as `file:line:col: rule "x": message (hint: ...)`.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
		if p.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Col)
		}
	}
	b.WriteString(": ")
	if p.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", p.Rule)
	}
	b.WriteString(p.Message)
	if p.Hint != "" {
		fmt.Fprintf(&b, " (hint: %s)", p.Hint)
	}
	return b.String()
}

// LoadError lists every problem found in every rule file by one [Load] call,
// sorted by file, line and column.
type LoadError struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sentinel causes carried by [EvalError.Cause] (test with errors.Is).
var (
	// ErrUnchangedValue: an output would contain an unchanged TOAST value
	// (contract.ErrUnchangedValue).
	ErrUnchangedValue = contract.ErrUnchangedValue
	// ErrResultType: an expression returned a value of a kind its field does
	// not accept (for example a map for a stream id).
	ErrResultType = errors.New("expression returned a value of the wrong type")
	// ErrEmptyResult: a stream id, key, topic or type evaluated to "".
	ErrEmptyResult = errors.New("expression returned an empty string")
	// ErrNotEncodable: a value cannot be written as JSON
	// (contract.ErrNotEncodable).
	ErrNotEncodable = contract.ErrNotEncodable
)

// EvalError is a runtime failure of one rule on one input. The input is never
// dropped: the caller gets this error (with the rule, the field that failed,
// the input and the cause) and dead-letters the input for that rule.
type EvalError struct {
	Rule  string // rule name
	Field string // rule field that failed: "when", "stream.id", "data.email", "key"...
	// Exactly one of Change, Event, Events is set, the input of the rule.
	Change *contract.Change
	Event  *StoredEvent
	Events []StoredEvent
	Cause  error
}

func (e *EvalError) Error() string {
	var in string
	switch {
	case e.Change != nil:
		if e.Change.Op == contract.OpMessage {
			in = fmt.Sprintf("message (commit %s, ordinal %d)", e.Change.Tx.CommitLSN, e.Change.Ordinal)
		} else {
			in = fmt.Sprintf("%s on %s (commit %s, ordinal %d)", e.Change.Op, e.Change.QualifiedTable(), e.Change.Tx.CommitLSN, e.Change.Ordinal)
		}
	case e.Event != nil:
		in = fmt.Sprintf("event %s@%d (%s)", e.Event.Stream, e.Event.Revision, e.Event.Type)
	default:
		in = "transaction of " + Count(len(e.Events), "event")
	}
	return fmt.Sprintf("rule %q, %s, on %s: %v", e.Rule, e.Field, in, e.Cause)
}

// Unwrap returns the cause.
func (e *EvalError) Unwrap() error { return e.Cause }

// EvalErrors is what Capture, Promote and PromoteTx return when one or more
// matching rules failed: one [*EvalError] per failed rule, in rule order.
// errors.As(err, &evalErr) finds the first; range over the slice for all.
type EvalErrors []*EvalError

func (es EvalErrors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return fmt.Sprintf("%d rules failed:\n%s", len(es), strings.Join(lines, "\n"))
}

// Unwrap exposes every *EvalError to errors.Is and errors.As.
func (es EvalErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// orNil is es as an error: nil when it holds none.
func (es EvalErrors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
