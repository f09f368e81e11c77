package mapping

import (
	"strings"
	"time"
)

// Event is one low-level event produced by a capture rule from one change.
type Event struct {
	Rule string // name of the capture rule that produced it
	// Index is the position of the producing rule among all the rules the
	// change matched (in rule order), whether or not the others failed, so
	// (commit LSN, ordinal, Index) names the event across re-deliveries.
	Index    int
	Stream   string // Category + "-" + ID
	Category string // the rule's stream.category
	ID       string // the evaluated stream.id
	Type     string // the rule's type
	Data     []byte // JSON object or value; keys of rule templates in file order, keys of maps sorted
	// Metadata is the rule's evaluated `metadata` template, nil when the rule
	// has none. It does not include the source position (contract.Source).
	Metadata map[string]any
}

// StoredEvent is a low-level event read back from the store, the input of
// promotion rules.
type StoredEvent struct {
	ID       string
	Stream   string
	Revision uint64
	Position uint64 // commit position in $all
	Type     string
	Data     any // decoded JSON
	// Metadata is the event's custom metadata: the source position written by
	// capture (contract.Source's keys, contract.AppendMetadata) merged with the capture rule's metadata,
	// as DecodeJSON reads it back.
	Metadata map[string]any
	Created  time.Time
}

// Category returns the part of the stream name before the first '-'.
func (e *StoredEvent) Category() string {
	c, _, _ := strings.Cut(e.Stream, "-")
	return c
}

// EntityID returns the part of the stream name after the first '-' ("" if
// the stream name has no '-').
func (e *StoredEvent) EntityID() string {
	_, id, _ := strings.Cut(e.Stream, "-")
	return id
}

// Header is one Kafka record header produced by a promotion rule.
type Header struct {
	Key   string
	Value string
}

// Integration is one integration event produced by a promotion rule.
type Integration struct {
	Rule    string
	Topic   string
	Key     string
	Type    string
	Subject string   // CloudEvents subject; defaults to the source event's stream
	Value   []byte   // JSON
	Headers []Header // in the order the rule declares them
}

// Column is one column of a table in a [Catalogue].
type Column struct {
	Name string
	Type string // Postgres type name as in pg_type.typname: int4, text, timestamptz, _int4 (array)...
	// NotNull is true for NOT NULL columns. A nullable column is typed any in
	// expressions: typing it by its Postgres type would compile comparisons
	// and operators that fail at run time on NULL (nil).
	NotNull bool
}

// Table describes one table of the source database.
type Table struct {
	Columns []Column
	// ReplicaIdentity is "default", "full", "index", "nothing", or "" when not
	// known. When known and not "full", rules reading old values of non-key
	// columns on update are rejected at load.
	ReplicaIdentity string
	Key             []string // primary key / replica identity columns
	// Generated are columns the table has that capture never sees
	// (generated columns Postgres does not publish: all of them before 18,
	// VIRTUAL ones on 18, STORED ones too without the publication's
	// publish_generated_columns). A rule reading one is a load problem,
	// with or without Options.Drift.
	Generated []string
}

// Catalogue maps qualified table names ("public.customers") to their
// description. Capture fills it from the database.
type Catalogue map[string]Table

// Options configure [Load].
type Options struct {
	// Catalogue, when set, makes Load check every column a capture rule reads
	// (new.x, old.x) against the tables the rule matches and type-check
	// expressions with the columns' types. Default nil: column names are not
	// checked and every column has type any.
	Catalogue Catalogue
	// Drift, with a Catalogue, accepts a capture rule that reads a column
	// its table lacks (renamed or dropped since the rule was written), or
	// that compiles only with its table's columns typed any (a column's
	// type changed): the column is typed any and [RuleSet.Gaps] reports
	// the rule, where without Drift it is a load problem. Capture sets it, so a schema
	// change stops only the rules it breaks (their changes are
	// dead-lettered); `chronicler rules check` and `chronicler check` do
	// not. Default false.
	Drift bool
}
