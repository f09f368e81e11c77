package ha

import (
	"errors"
	"fmt"
)

// ErrLost is the cause of a lost lease: the lock connection failed.
var ErrLost = errors.New("ha: lost the advisory lock session")

// ErrInDoubt: the lease may be lost (no successful ping within its
// validity window); act as if it were.
var ErrInDoubt = errors.New("ha: the HA lease is in doubt")

// ConfigError is one invalid setting.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("ha config %s: %s", e.Field, e.Reason) }
