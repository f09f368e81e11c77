// Package mapping is Chronicler's rule language: YAML rule files with
// expr-lang expressions, compiled once by [Load] and evaluated per captured
// change ([RuleSet.Capture], capture rules) and per stored event
// ([RuleSet.Promote], [RuleSet.PromoteTx], promotion rules).
//
// # Rule files
//
// [Load] takes files or directories (searched recursively for *.yaml and
// *.yml; *_test.yaml files are rule tests, see package ruletest). A file has
// two optional lists:
//
//	capture:
//	  - name: customer-email-changed        # unique among capture rules, across files
//	    table: public.customers             # or a list; globs * ? [..]; "customers" = public.customers
//	    on: [update]                        # insert update delete truncate snapshot | message
//	    when: old.email != new.email        # optional boolean expression
//	    stream: {category: customer, id: new.id}  # stream = category + "-" + id
//	    type: CustomerEmailChanged
//	    data: {customerId: new.id, email: lower(new.email)}
//	    metadata: {tenant: new.tenant_id}   # optional
//	    unchanged: error                    # error (default) | omit | marker, see TOAST below
//	  - name: audit-message
//	    on: [message]
//	    prefix: app.audit                   # messages whose prefix starts with this
//	    stream: {category: audit, id: message.prefix}
//	    type: AuditMessage
//	    data: '{"text": message.content}'
//
//	promote:
//	  - name: customer-contact-changed
//	    from: [CustomerEmailChanged]        # event types; and/or category: [customer]
//	    when: event.data.email != nil       # optional
//	    topic: crm.customer-contact.v1
//	    key: event.data.customerId          # optional; default: the entity id (stream after the first '-')
//	    subject: event.stream               # optional; default: the event's stream
//	    type: crm.customer.contact-changed.v1
//	    value: {customerId: event.data.customerId, email: event.data.email}
//	    headers: {change: kebab(event.type)} # optional, expressions giving text
//	    schema: schemas/contact-changed.v1.json # optional, see Schemas below
//	  - name: order-placed
//	    scope: transaction                  # one output per source transaction
//	    from: OrderInserted                 # fires when some event of the transaction matches
//	    topic: shop.orders.v1
//	    type: shop.order.placed.v1
//	    value: {orderId: event.data.orderId, lines: 'map(filter(events, .type == "OrderLineInserted"), .data.sku)'}
//
// type, topic and stream.category are literal strings, known at load time, so
// the publisher can filter its subscription ([RuleSet.Interest]). when,
// stream.id, key, subject and header values are expressions. In data, value
// and metadata, a string is an expression, a mapping or list is built from its
// entries (keys in file order), and numbers, booleans and null are constants;
// write a literal string as an expression: '"text"'.
//
// # Schemas
//
// A promotion rule may declare the contract of its values with schema: a
// JSON Schema (draft-07 unless it names another with $schema; format is
// asserted) written inline as YAML, or the path of a .json file relative to
// the rule file. References must stay inside the schema ("#/definitions/x");
// nothing is read from elsewhere.
//
//	promote:
//	  - name: order-placed
//	    ...
//	    value: {orderId: event.data.orderId, total: event.data.totalCents}
//	    schema: schemas/order-placed.v1.json   # or inline:
//	    # schema: {type: object, additionalProperties: false,
//	    #          properties: {orderId: {type: integer}, total: {type: integer}}, required: [orderId, total]}
//
// At load, the schema must compile, and the value is checked against it as
// far as that is known without evaluating anything: a required field the
// value does not write, a field a closed object (additionalProperties:
// false) does not allow, a constant or an expression whose result type is
// known (len(x) is an int) of a type the schema does not allow; each a
// problem at its file:line:col. At run time every value the rule produces is
// validated; a violation fails the rule with a [*SchemaError] (errors.Is
// [ErrSchemaViolation]) naming each violation by its JSON pointer, so the
// publisher dead-letters the event like any promotion failure. Rule tests
// validate every expected value against its rule's schema too.
// [RuleSet.Schema] and [RuleSet.Schemas] give each rule's [Schema], with its
// canonical text (what a schema registry stores); [SchemaFiles] lists the
// .json files beside the rules (reload watches them). [RuleSet.DeriveSchema]
// drafts a schema from a rule's value (`chronicler rules schema`): a closed
// object with every field required, the types the compiler knows, and
// event.data.<field> typed through the capture rules producing the rule's
// events (with the catalogue's column types when the set was loaded with
// one); what stays unknown is left open, with a description.
//
// # Expressions
//
// Expressions are expr-lang (v1.17.8), compiled once at load with a typed
// environment. Capture rules see:
//
//	new, old     the row after / before (maps of column → value; old only for update with
//	             REPLICA IDENTITY FULL or changed key, and delete); nil map when absent
//	key          map of the replica identity columns (from new, else old)
//	op           "insert", "update", ...
//	table        "schema.table"; schema, database
//	tx           {xid, commitLsn, commitTime, origin}; lsn, ordinal
//	message      {prefix, content (string), transactional} for message rules
//
// Promotion rules see event = {id, stream, category, entityId, revision,
// position, type, data, metadata, created} and, in transaction rules, events
// (all events of the transaction, in order; event is the first that matched
// from/category).
//
// Column values follow package change's value domain (int64, float64,
// json.Number for numeric, string, time.Time, []byte, maps, lists...).
//
// Helpers, all pure: unchanged(v), coalesce(a, b, ...), id(a, b, ...) (text
// joined by ":"), uuid5(a, ...) (name-based UUID), text(v), snake(s),
// camel(s), pascal(s), kebab(s), plus expr's builtins (lower, upper, trim,
// map, filter, any, len, toJSON, ...).
//
// Determinism: rules must be pure functions of their input, so a replay
// yields the same events. now() and timezone() are rejected at load; date()
// is accepted only as date(value, layout) (the other forms guess layouts or
// load host time zones). A layout with a zone abbreviation (MST) still
// resolves it with the process's local zone, as time.Parse does: run with
// TZ=UTC. Use tx.commitTime / event.created for times.
//
// # Checks at load
//
// Every problem in every file is reported at once, as a [*LoadError] whose
// Problems carry file, line, column (inside the expression where possible),
// rule and a hint: YAML syntax, unknown or duplicate fields, duplicate rule
// names, unknown operations, missing fields, bad table patterns, categories
// with '-', invalid topic names, expression syntax and type errors, results of
// the wrong kind (when not boolean, stream.id not text), forbidden functions,
// old read by an insert-only rule.
//
// With [Options.Catalogue] (capture fills it from the database), every new.x
// and old.x is checked against the columns of every table the rule matches (a
// typo is a load error with a "did you mean"), an exact-table rule is
// type-checked with the types of its NOT NULL columns ("c" + new.id is an
// error for an int8 id; nullable columns are typed any, since NULL is nil and
// a typed comparison would fail on it at run time), a table missing from the database is an error, and old.x of a non-key
// column on update is an error when the table's replica identity is known and
// not FULL. Without a catalogue (`chronicler rules check`) columns are not
// checked and have type any.
//
// # Evaluation and errors
//
// Each change (event) may match several rules; each match is one output, in
// rule order (files sorted by path, then file order). No match: zero outputs
// and a nil error (the caller counts it). A rule that fails at run time (an
// expression error, a NULL or empty stream id, a value that cannot be JSON)
// does not stop the others: Capture/Promote/PromoteTx return the outputs of
// the rules that worked and an [EvalErrors] with one [*EvalError] (rule,
// field, input, cause) per failed rule; the caller dead-letters the input for
// those rules. Causes include [ErrUnchangedValue], [ErrResultType],
// [ErrEmptyResult] and [ErrNotEncodable] (errors.Is).
//
// Data is JSON written by contract.AppendJSON, the one JSON writer of stored
// events: template keys in file order, keys of map values sorted, times RFC
// 3339 UTC, bytea base64, numeric as the exact decimal, unknown types as
// their text form. The source metadata capture stores with each event is the
// contract's (contract.Source, contract.AppendMetadata); [contract.DecodeJSON]
// decodes stored data for promotion (integral numbers as int64).
//
// # Unchanged TOAST values
//
// new.col is the [contract.Unchanged] marker for a TOASTed column the server did
// not send. Expressions can test it with unchanged(new.col) or replace it with
// coalesce(new.col, old.col). If it reaches an output anyway, the rule's
// unchanged policy decides: error (default) fails the rule with
// ErrUnchangedValue, so the change is dead-lettered, never silently wrong;
// omit drops the map key or list element; marker writes {"$unchanged":true}.
// In a stream id, key or header it is always an error.
//
// # Lookup speed
//
// Capture rules are indexed by table: exact names in a map, globs resolved
// once per distinct table and cached (copy-on-write, lock-free reads), then
// by operation. Promotion rules are resolved once per distinct (type,
// category). Evaluation reuses pooled VMs and environments. See README.md for
// benchmark numbers.
//
// # Concurrency
//
// A [RuleSet] is immutable after Load and safe for concurrent use; Capture,
// Promote and PromoteTx may be called from any number of goroutines.
//
// # Example
//
//	rs, err := mapping.Load([]string{"rules/"}, mapping.Options{Catalogue: cat})
//	if err != nil {
//		return err // *LoadError: print it, one problem per line
//	}
//	events, err := rs.Capture(ch, events[:0])
//	for _, e := range events {
//		src := contract.SourceOf(slot, ch, e.Rule, uint32(e.Index))
//		store(e, contract.AppendMetadata(nil, &src, e.Metadata))
//	}
//	var failed mapping.EvalErrors
//	if errors.As(err, &failed) {
//		for _, f := range failed {
//			deadLetter(ch, f.Rule, f)
//		}
//	}
//
// Not done yet: rule-level "description" is parsed but unused; merge keys
// (<<) are rejected; message rules are matched by a linear prefix scan (few
// expected); the loader takes about 0.2 ms per rule.
package mapping
