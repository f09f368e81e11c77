package registry

import (
	"fmt"
	"strings"
)

// IncompatibleError: the registry finds a rule's schema incompatible with
// the latest version of its subject; nothing was registered for it. The
// publisher refuses to start with it (and a rule reload is refused).
type IncompatibleError struct {
	Rules   string // the rules registering under the subject, with where they declare the schema
	Subject string
	Level   string // the compatibility level the registry applied
	Version int    // the subject's latest version (0: not read)
	ID      int    // its schema id
	// Fields are the differences that break compatibility, found by
	// comparing the two schemas (the registry does not always say): field
	// "b" removed, field "c" now required, ...
	Fields   []string
	Messages []string // the registry's own messages
}

func (e *IncompatibleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule %s: the schema is incompatible with ", e.Rules)
	if e.Version > 0 {
		fmt.Fprintf(&b, "version %d (id %d) of ", e.Version, e.ID)
	}
	fmt.Fprintf(&b, "subject %q under compatibility %s", e.Subject, e.Level)
	if len(e.Fields) > 0 {
		fmt.Fprintf(&b, ": %s", strings.Join(e.Fields, "; "))
	} else {
		b.WriteString(": no field differs in a way this check knows (compare the schemas)")
	}
	if len(e.Messages) > 0 {
		fmt.Fprintf(&b, " (registry: %s)", strings.Join(e.Messages, "; "))
	}
	b.WriteString("; nothing was registered. Make the change compatible (keep existing fields; add new ones as optional), or publish to a new topic (e.g. a .v2)")
	return b.String()
}

// NotRegisteredError: with LookupOnly, a rule's schema is not registered
// under its subject.
type NotRegisteredError struct {
	Rules, Subject, Registry string
}

func (e *NotRegisteredError) Error() string {
	return fmt.Sprintf("rule %s: the schema is not registered under subject %q in %s (kafka.schema_registry.lookup_only is set): register it, e.g. in CI after `chronicler rules check --registry URL` passes, or unset lookup_only",
		e.Rules, e.Subject, e.Registry)
}

// ConflictError: rules that share a subject declare different schemas.
type ConflictError struct {
	Subject  string
	Rules    string
	Strategy Strategy
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("rules %s register different schemas under subject %q (subject_strategy %s): give them the same schema, or set kafka.schema_registry.subject_strategy: record (each schema's title, else its rule's type, names its subject)",
		e.Rules, e.Subject, e.Strategy)
}

// MixedTopicError: some rules writing a topic have a schema and others do
// not. With a registry, the values of rules with a schema are framed with
// its id (the Confluent wire format); plain JSON on the same topic would
// break every consumer's deserializer.
type MixedTopicError struct {
	Topic      string
	WithSchema []string
	Without    []string
}

func (e *MixedTopicError) Error() string {
	return fmt.Sprintf("topic %s: rules %s have a schema and rules %s do not: with kafka.schema_registry set, every rule writing a topic needs one (add schema: to %s)",
		e.Topic, strings.Join(e.WithSchema, ", "), strings.Join(e.Without, ", "), strings.Join(e.Without, ", "))
}

// RequestError: the registry could not be asked (unreachable, refused the
// credentials, answered an error).
type RequestError struct {
	Registry string
	Doing    string // "looking up the schema", ...
	Subject  string // "" when not about one subject
	Rules    string
	Err      error
}

func (e *RequestError) Error() string {
	what := e.Doing
	if e.Subject != "" {
		what += fmt.Sprintf(" of rule %s under subject %q", e.Rules, e.Subject)
	}
	return fmt.Sprintf("schema registry %s: %s: %v (check kafka.schema_registry.url, its credentials and TLS settings, and that the registry runs)", e.Registry, what, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }
