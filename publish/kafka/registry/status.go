package registry

import (
	"fmt"
	"strings"
)

// OK reports whether the subject is fine for a start: the registry
// answered and the schema is registered or may be.
func (s Status) OK() bool { return s.Err == nil && s.Compatible }

// Found says in words what the registry holds for the subject and what a
// start would do; Rules are left out (the caller names them).
func (s Status) Found() string {
	switch {
	case s.Err != nil:
		return "not checked: " + s.Err.Error()
	case s.Registered:
		return fmt.Sprintf("registered as version %d (id %d) of %d, compatibility %s", s.Version, s.ID, s.Latest, s.Level)
	case s.Latest == 0:
		return fmt.Sprintf("a new subject (compatibility %s): a start registers the schema as version 1", s.Level)
	case s.Compatible:
		return fmt.Sprintf("compatible with version %d under %s: a start registers it as version %d", s.Latest, s.Level, s.Latest+1)
	}
	found := fmt.Sprintf("incompatible with version %d under %s", s.Latest, s.Level)
	if len(s.Fields) > 0 {
		found += ": " + strings.Join(s.Fields, "; ")
	}
	if len(s.Messages) > 0 {
		found += " (registry: " + strings.Join(s.Messages, "; ") + ")"
	}
	return found
}

// Fix is what to do when !OK.
func (s Status) Fix() string {
	switch {
	case s.OK():
		return ""
	case s.Err != nil:
		return "check kafka.schema_registry (url, credentials, TLS) and that the registry runs"
	}
	return "make the change compatible (keep existing fields; add new ones as optional), or publish to a new topic (e.g. a .v2)"
}
