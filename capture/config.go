package capture

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// ErrorPolicy says what a change a rule cannot map (or an event over the
// store's size limit) does to the pipeline.
type ErrorPolicy string

// The error policies.
const (
	// OnErrorDeadLetter stores the change, the rule and the error in the
	// dead-letter stream, counts it and goes on (the default).
	OnErrorDeadLetter ErrorPolicy = "deadletter"
	// OnErrorStop makes the failure fatal: the transaction is not committed,
	// nothing after it is confirmed, and Run returns a *StopError.
	OnErrorStop ErrorPolicy = "stop"
)

// Config configures a [Pipeline].
type Config struct {
	// Slot is the replication slot name; it names the default dead-letter
	// and progress streams. Required.
	Slot string
	// Rules are the loaded capture rules. Required.
	Rules *mapping.RuleSet
	// DeadLetterStream receives changes a rule failed on. Default
	// contract.DeadLetterStream(slot), "chronicler-deadletter-<slot>". (Progress
	// markers go to contract.ProgressStream(slot), which is not configurable:
	// the publisher finds them there.)
	DeadLetterStream string
	// ProgressMaxCount is the $maxCount set on the progress stream's metadata
	// so it stays small (only its last event matters). Default 1000;
	// negative leaves the stream's metadata alone.
	ProgressMaxCount int
	// OnError is the policy for rule failures and oversized events. Default
	// OnErrorDeadLetter.
	OnError ErrorPolicy
	// Ack confirms a durable commit LSN to the source (Source.Ack). Run calls
	// it once the progress marker covering the LSN is stored. Required.
	Ack func(contract.LSN)
	// Registerer receives the pipeline's metrics. Default nil: not registered.
	Registerer prometheus.Registerer
	// Logger receives state changes. Default slog.Default().
	Logger *slog.Logger
}

// validate fills defaults and returns every problem, joined.
func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.Slot == "" {
		bad("slot", "required: the replication slot name")
	}
	if c.Rules == nil {
		bad("rules", "required: the loaded capture rules")
	}
	if c.Ack == nil {
		bad("ack", "required: the function that confirms durable LSNs to the source (Source.Ack)")
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = contract.DeadLetterStream(c.Slot)
	}
	if c.DeadLetterStream == contract.ProgressStream(c.Slot) {
		bad("deadletter.stream", "%q is also the progress stream; use another name", c.DeadLetterStream)
	}
	if c.ProgressMaxCount == 0 {
		c.ProgressMaxCount = 1000
	}
	switch c.OnError {
	case "":
		c.OnError = OnErrorDeadLetter
	case OnErrorDeadLetter, OnErrorStop:
	default:
		bad("on_error", "%q is not one of deadletter, stop", c.OnError)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}
