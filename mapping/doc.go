// Package mapping is Chronicler's rule language: YAML rule files with
// expr-lang expressions, compiled once by [Load] and evaluated per captured
// change ([RuleSet.Capture], capture rules) and per stored event
// ([RuleSet.Promote], [RuleSet.PromoteTx], promotion rules).
//
// The rule language itself (rule files, capture and promotion rules,
// templates, expressions, every function, the rule-test format, with
// examples that a test runs) is documented for rule authors in README.md,
// beside this file; the binary prints it with `chronicler rules docs
// [TOPIC]`, from the copy embedded here ([Docs], [DocTopics]). This comment
// describes the design and the Go API.
//
// # Loading
//
// [Load] takes files or directories (searched recursively for *.yaml and
// *.yml; *_test.yaml files are rule tests, see package ruletest), parses
// them with goccy/go-yaml's AST (so every problem keeps its line and
// column) and compiles every expression once with expr-lang (v1.17.8)
// against a typed environment: capture rules see the change (new, old, key,
// op, table, tx, ...), promotion rules the stored event (and, in
// transaction rules, the transaction's events). type, topic and
// stream.category are literals known at load time, so the publisher can
// filter its subscription ([RuleSet.Interest]).
//
// # Schemas
//
// A promotion rule may declare the contract of its values with schema: a
// JSON Schema (draft-07 unless it names another with $schema; format is
// asserted), inline as YAML or a .json file relative to the rule file;
// references must stay inside the schema, nothing is read from elsewhere
// (README.md, Schemas). At load the schema must compile and the value
// template is checked against it as far as that is known without
// evaluating anything (required fields written, closed objects, constants
// and expressions of known result type), each problem at its
// file:line:col. At run time every value is validated; a violation is a
// [*SchemaError] (errors.Is [ErrSchemaViolation]) naming each violation by
// its JSON pointer, which the publisher dead-letters like any promotion
// failure. [RuleSet.Schema] and [RuleSet.Schemas] give each rule's
// [Schema] with its canonical text (what a schema registry stores);
// [SchemaFiles] lists the .json files beside the rules (reload hashes
// them). [RuleSet.DeriveSchema] drafts a schema from a rule's value
// (`chronicler rules schema`): closed objects with every field required,
// the types the compiler knows, event.data.<field> typed through the
// capture rules producing the rule's events (and the catalogue's column
// types when loaded with one); what stays unknown is left open, with a
// description.
//
// # Checks at load
//
// Every problem in every file is reported at once, as a [*LoadError] whose
// Problems carry file, line, column (inside the expression where possible),
// rule and a hint. Determinism is enforced here: now() and timezone() are
// rejected and date() is accepted only with an explicit layout.
//
// With [Options.Catalogue] (capture fills it from the database), every new.x
// and old.x is checked against the columns of every table the rule matches,
// an exact-table rule is type-checked with the types of its NOT NULL
// columns (nullable columns are typed any, since NULL is nil and a typed
// comparison would fail on it at run time), a table missing from the
// database is an error, and old.x of a non-key column on update is an error
// when the table's replica identity is known and not FULL. Without a
// catalogue (`chronicler rules check`) columns are not checked and have type
// any.
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
// decodes stored data for promotion (integers in int64's range as int64,
// other numbers as json.Number holding the exact text, written back digit
// for digit). Where a rule computes, the compiler converts operands whose
// type is unknown at load with number() (numbers.go); README.md, Numbers.
//
// # Unchanged TOAST values
//
// new.col is the [contract.Unchanged] marker for a TOASTed column the server did
// not send; the rule's unchanged policy decides what an output holding it
// becomes (README.md, "Unchanged TOAST values"); the default fails the rule
// with ErrUnchangedValue.
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
