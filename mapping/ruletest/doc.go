// Package ruletest runs rule tests: YAML files named *_test.yaml next to the
// rule files, like promtool's rule tests. `chronicler rules test` uses it.
//
// # Format
//
//	tests:
//	  - name: an email change becomes CustomerEmailChanged
//	    tx: {xid: 7, commitLsn: 0/16B3748, commitTime: "2024-05-01T10:00:00Z"}  # optional
//	    changes:                       # the row changes of one source transaction, in order
//	      - op: update                 # insert, update, delete, truncate, snapshot, message
//	        table: public.customers    # "customers" means public.customers
//	        old: {id: 42, email: a@x}
//	        new: {id: 42, email: b@x, body: {$unchanged: true}}   # an unchanged TOAST value
//	        key: [id]                  # optional replica identity columns
//	        # message: {prefix: app., content: "...", transactional: true}
//	    events:                        # expected low-level events, all of them, in order
//	      - stream: customer-42
//	        type: CustomerEmailChanged
//	        data: {customerId: 42, email: b@x}
//	        rule: customer-email-changed          # optional
//	        metadata: {xid: 7, op: update}        # optional; only the keys named are compared
//	    integration:                   # expected integration events, all of them, in order
//	      - {topic: crm.contact.v1, key: "42", type: crm.contact-changed.v1, value: {...}}
//	        # subject, headers, rule: optional
//	    errors:                        # expected rule failures; absent means none
//	      - {rule: some-rule, field: data.x}
//
// Instead of changes a case can give `stored:` events (stream, type, data,
// metadata, revision...) to test promotion rules alone. A list that is
// absent is not checked; an empty list expects nothing.
//
// Values: YAML integers are int64, other numbers float64, strings stay
// strings (a timestamptz column is given as a string, not a time.Time; not
// done yet: typed fixtures). Changes run through Capture; their events become
// stored events (data decoded with contract.DecodeJSON, metadata from
// contract.MetadataMap with slot "ruletest") and run through Promote one by
// one, then through
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
