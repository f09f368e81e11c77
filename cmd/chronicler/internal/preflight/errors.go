package preflight

import "fmt"

// ConfigError is a setting check or status cannot use. Check reports it as a
// Fail check; status as an error of the section.
type ConfigError struct {
	Setting string // e.g. "store.url"
	Reason  string
}

func (e *ConfigError) Error() string { return fmt.Sprintf("%s: %s", e.Setting, e.Reason) }

// SectionError is one part of a status report that could not be read. The
// report holds what could.
type SectionError struct {
	Section string // "slot", "store", "publisher", "deadletters"
	Cause   error
}

func (e *SectionError) Error() string { return fmt.Sprintf("%s: %v", e.Section, e.Cause) }

// Unwrap returns the cause.
func (e *SectionError) Unwrap() error { return e.Cause }
