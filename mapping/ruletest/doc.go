// Package ruletest runs rule tests: YAML files named *_test.yaml next to the
// rule files, like promtool's rule tests. `chronicler rules test` uses it.
//
// # Format
//
// The test-file format is documented for rule authors, with an example that
// a test runs, in mapping/README.md ("Rule tests"; `chronicler rules docs
// rule-tests`). In short: a list under tests:, each case with a name, an
// optional tx, its input (changes: one source transaction, or stored:
// events) and what it expects (events:, integration:, errors:). A list that
// is absent is not checked; an empty list expects nothing.
//
// Values: YAML integers are int64, other numbers float64, strings stay
// strings (a timestamptz column is given as a string, not a time.Time; not
// done yet: typed fixtures). Changes run through Capture; their events become
// stored events (data and metadata as the publisher decodes them from the
// stored bytes, contract.DecodeJSON; the metadata written for slot
// "ruletest") and run through Promote one by one, then through
// PromoteTx as one transaction; integration events are compared in that
// order. A failure prints a line diff of expected (-) against got (+).
// Every expected integration value is also validated against the schema of
// its rule (the entry's rule, else the rule of the event produced at its
// place, else the one rule with a schema writing its topic and type): a
// fixture that breaks the contract fails, with each violation.
//
// Concurrency: RunCase and Run are safe to call concurrently; they share
// nothing but the (immutable) rule set.
package ruletest
