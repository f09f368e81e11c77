package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Column describes one column of a captured table.
type Column struct {
	Name string
	// Type is the type's name in pg_type (typname): "int4", "varchar",
	// "timestamptz", "numeric", "_int4" for int4[], "mood" for an enum. No
	// modifiers, no schema.
	Type    string
	TypeOID uint32
	// ElemOID is the element type of an array column, else 0.
	ElemOID uint32
	Key     bool // part of the primary key
	NotNull bool
}

// Table is what the checks and the catalogue read of one table.
type Table struct {
	Name      string // "schema.table"
	Exists    bool
	CanSelect bool // the role may SELECT it (the snapshot reads it)
	Owned     bool // the role owns it or is a member of its owner (may publish it)
	// ReplicaIdentity is "default", "full", "index" or "nothing" (the
	// mapping's names); IdentityIndex names the index of "index".
	ReplicaIdentity string
	IdentityIndex   string
	// Columns are the columns capture sees, in table order: every column
	// but the generated ones pgoutput does not send.
	Columns []Column
	// Generated names the generated columns capture does not see, in table
	// order. pgoutput does not send them: Postgres 14-17 never sends a
	// generated column; 18 sends the STORED ones when the publication has
	// publish_generated_columns = stored (which capture sets when it
	// creates the publication; they are in Columns then), never the
	// VIRTUAL ones. Capture leaves them out of the snapshot too: no event
	// carries them, and a rule reading one fails at load ([CheckGenerated]
	// says so).
	Generated []string
	// storedLeftOut are the STORED ones among Generated (Postgres 18 would
	// send them with publish_generated_columns = stored).
	storedLeftOut []string
	// Partitioned is true for a partitioned table. Its changes are
	// published under its own name only with the publication's
	// publish_via_partition_root, which capture sets when it creates the
	// publication (and requires of an existing one); Partitions are its
	// leaf partitions, whose replica identities are the ones that count.
	Partitioned bool
	Partitions  []Partition
}

// Partition is a leaf partition of a partitioned [Table].
type Partition struct {
	Name            string // "schema.table"
	ReplicaIdentity string // as Table.ReplicaIdentity
	HasKey          bool   // it has a primary key
}

// Key returns the primary-key columns in table order, nil when none.
func (t Table) Key() []string {
	var key []string
	for _, c := range t.Columns {
		if c.Key {
			key = append(key, c.Name)
		}
	}
	return key
}

// quoted is the table's name quoted for SQL.
func (t Table) quoted() string {
	schema, name := SplitTable(t.Name)
	return pgx.Identifier{schema, name}.Sanitize()
}

var identityNames = map[string]string{"d": "default", "f": "full", "i": "index", "n": "nothing"}

// readTable reads table; genStored says whether the publication sends
// STORED generated columns (Postgres 18's publish_generated_columns =
// stored, [publishesGenerated]): they are captured columns then.
func readTable(ctx context.Context, q querier, table string, genStored bool) (Table, error) {
	t := Table{Name: table}
	var ident string
	var index *string
	err := q.QueryRow(ctx, `
SELECT c.oid IS NOT NULL, coalesce(has_table_privilege(c.oid, 'SELECT'), false),
       coalesce(pg_has_role(c.relowner, 'USAGE'), false), coalesce(c.relreplident::text, ''),
       (SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident),
       coalesce(c.relkind = 'p', false)
FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`, t.quoted()).
		Scan(&t.Exists, &t.CanSelect, &t.Owned, &ident, &index, &t.Partitioned)
	if err != nil {
		return t, fmt.Errorf("reading the catalog entry of %s (pg_class, pg_index): %w", table, err)
	}
	if !t.Exists {
		return t, nil
	}
	t.ReplicaIdentity = identityNames[ident]
	if t.ReplicaIdentity == "" {
		t.ReplicaIdentity = ident // a letter of a later Postgres, reported as read
	}
	if index != nil {
		t.IdentityIndex = *index
	}
	rows, err := q.Query(ctx, `
SELECT a.attname, a.atttypid, t.typname, CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE 0::oid END,
       coalesce(a.attnum = ANY(pk.indkey), false), a.attnotnull, a.attgenerated::text
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, t.quoted())
	if err != nil {
		return t, fmt.Errorf("reading the columns of %s (pg_attribute): %w", table, err)
	}
	var c Column
	var generated string
	_, err = pgx.ForEachRow(rows, []any{&c.Name, &c.TypeOID, &c.Type, &c.ElemOID, &c.Key, &c.NotNull, &generated}, func() error {
		switch {
		case !leftOut(generated, genStored):
			t.Columns = append(t.Columns, c)
		case generated == genStoredKind:
			t.storedLeftOut = append(t.storedLeftOut, c.Name)
			fallthrough
		default:
			t.Generated = append(t.Generated, c.Name)
		}
		return nil
	})
	if err != nil {
		return t, fmt.Errorf("reading the columns of %s (pg_attribute): %w", table, err)
	}
	if t.Partitioned {
		if t.Partitions, err = readPartitions(ctx, q, t); err != nil {
			return t, err
		}
	}
	return t, nil
}

// readPartitions reads the leaf partitions of a partitioned table.
func readPartitions(ctx context.Context, q querier, t Table) ([]Partition, error) {
	rows, err := q.Query(ctx, `
SELECT n.nspname || '.' || c.relname, c.relreplident::text,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
FROM pg_partition_tree(to_regclass($1)) pt
JOIN pg_class c ON c.oid = pt.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE pt.isleaf
ORDER BY 1`, t.quoted())
	if err != nil {
		return nil, fmt.Errorf("reading the partitions of %s (pg_partition_tree): %w", t.Name, err)
	}
	var p Partition
	var ident string
	var out []Partition
	_, err = pgx.ForEachRow(rows, []any{&p.Name, &ident, &p.HasKey}, func() error {
		p.ReplicaIdentity = identityNames[ident]
		if p.ReplicaIdentity == "" {
			p.ReplicaIdentity = ident
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the partitions of %s (pg_partition_tree): %w", t.Name, err)
	}
	return out, nil
}

// Catalog returns every captured table, keyed "schema.table", read from
// the database now; a table that does not exist is a *TableNotFoundError.
// It opens and closes its own connection and may be called before or
// during Run.
func (s *Source) Catalog(ctx context.Context) (map[string]Table, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	genStored, err := publishesGenerated(ctx, conn, s.cfg.Publication)
	if err != nil {
		return nil, err
	}
	tables := s.captured().tables
	out := make(map[string]Table, len(tables))
	for _, name := range tables {
		t, err := readTable(ctx, conn, name, genStored)
		if err != nil {
			return nil, err
		}
		if !t.Exists {
			return nil, &TableNotFoundError{Table: name}
		}
		out[name] = t
	}
	return out, nil
}

// CheckTable checks that table exists in srv's database and that srv's
// role may read it.
func CheckTable(t Table, srv Server) Finding {
	f := Finding{Check: "table " + t.Name, Found: "exists, SELECT granted"}
	if t.Partitioned {
		names := make([]string, len(t.Partitions))
		for i, p := range t.Partitions {
			names[i] = p.Name
		}
		f.Found += fmt.Sprintf("; partitioned (%s: %s): its partitions' changes are captured under %s "+
			"(the publication publishes via the partition root)", plural(len(names), "partition"), strings.Join(names, ", "), t.Name)
		if len(names) == 0 {
			f.Found = fmt.Sprintf("exists, SELECT granted; partitioned, no partitions yet: their changes will be captured under %s", t.Name)
		}
	}
	switch {
	case !t.Exists:
		f.Verdict, f.Err = Fail, &TableNotFoundError{Table: t.Name}
		f.Found = "does not exist in database " + srv.Database
		f.Fix = "create it, or remove it from postgres.tables (names are schema.table, case-sensitive)"
	case !t.CanSelect:
		f.Verdict, f.Err = Fail, &PrivilegeError{Role: srv.Role, Privilege: "SELECT", Table: t.Name}
		f.Found = "exists, but role " + srv.Role + " may not SELECT it (the snapshot reads it)"
		f.Fix = fmt.Sprintf("GRANT SELECT ON %s TO %s;", t.quoted(), pgx.Identifier{srv.Role}.Sanitize())
	}
	return f
}

// NeedOldValuesReason is the reason [CheckReplicaIdentity] gives for a
// table listed in postgres.need_old_values (Config.NeedOldValues).
const NeedOldValuesReason = "it is in postgres.need_old_values"

// CheckReplicaIdentity checks that an existing table's replica identity
// lets Postgres publish its updates and deletes (else Fail: once published,
// the application's UPDATEs and DELETEs would fail), and warns when it does
// not send the old values that readers (the reasons: need_old_values, rules
// reading old values) need.
func CheckReplicaIdentity(t Table, readers []string) Finding {
	if t.Partitioned {
		return checkPartitionIdentity(t, readers)
	}
	f := Finding{Check: "replica identity " + t.Name}
	full := fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL;", t.quoted())
	switch key := t.Key(); t.ReplicaIdentity {
	case "full":
		f.Found = "FULL (old values of every column)"
		return f
	case "index":
		f.Found = "USING INDEX " + t.IdentityIndex
	case "default":
		if len(key) == 0 {
			f.Verdict, f.Err = Fail, &ReplicaIdentityError{Table: t.Name, Identity: "default"}
			f.Found = "DEFAULT and no primary key: Postgres refuses UPDATE and DELETE on a published table without a replica identity"
			f.Fix = full + " (or add a primary key)"
			return f
		}
		f.Found = "DEFAULT (primary key " + strings.Join(key, ", ") + ")"
	case "nothing":
		f.Verdict, f.Err = Fail, &ReplicaIdentityError{Table: t.Name, Identity: "nothing"}
		f.Found = "NOTHING: Postgres refuses UPDATE and DELETE on a published table without a replica identity"
		f.Fix = full + " (or ALTER TABLE ... REPLICA IDENTITY DEFAULT with a primary key)"
		return f
	default:
		f.Found = "unknown (" + t.ReplicaIdentity + ")"
	}
	if len(readers) > 0 {
		f.Verdict, f.Fix = Warn, full
		f.Found += "; but " + strings.Join(readers, "; ") + ", which this identity does not send"
	}
	return f
}

// checkPartitionIdentity is CheckReplicaIdentity for a partitioned table:
// rows live in its leaf partitions, and each leaf's own replica identity
// decides whether Postgres lets the application update and delete them
// once published, and which old values it sends (a partitioned table's
// REPLICA IDENTITY does not reach its partitions).
func checkPartitionIdentity(t Table, readers []string) Finding {
	f := Finding{Check: "replica identity " + t.Name}
	if len(t.Partitions) == 0 {
		f.Found = "partitioned, no partitions yet (each partition attached later needs a primary key or REPLICA IDENTITY FULL)"
		return f
	}
	var bad, notFull, found, fixBad, fixFull []string
	for _, p := range t.Partitions {
		schema, name := SplitTable(p.Name)
		full := fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL;", pgx.Identifier{schema, name}.Sanitize())
		id := strings.ToUpper(p.ReplicaIdentity)
		switch {
		case p.ReplicaIdentity == "nothing" || p.ReplicaIdentity == "default" && !p.HasKey:
			bad = append(bad, p.Name)
			fixBad = append(fixBad, full)
			id += " without a primary key"
		case p.ReplicaIdentity == "default":
			id += " (primary key)"
		}
		if p.ReplicaIdentity != "full" {
			notFull = append(notFull, p.Name)
			fixFull = append(fixFull, full)
		}
		found = append(found, p.Name+" "+id)
	}
	f.Found = "partitioned; partitions: " + strings.Join(found, ", ")
	switch {
	case len(bad) > 0:
		f.Verdict, f.Err = Fail, &ReplicaIdentityError{Table: t.Name, Identity: "default", Partitions: bad}
		f.Found += "; Postgres refuses UPDATE and DELETE on a published partition without a replica identity " +
			"(the partitioned table's own REPLICA IDENTITY does not reach its partitions)"
		f.Fix = strings.Join(fixBad, " ") + " (or add a primary key)"
	case len(readers) > 0 && len(notFull) > 0:
		f.Verdict, f.Fix = Warn, strings.Join(fixFull, " ")
		f.Found += "; but " + strings.Join(readers, "; ") + ", which " + strings.Join(notFull, ", ") + " do not send"
	}
	return f
}

// genStoredKind is pg_attribute.attgenerated of a STORED generated column
// ('v' is VIRTUAL, Postgres 18; ” not generated).
const genStoredKind = "s"

// leftOut reports whether a column of attgenerated kind is one pgoutput
// does not send: a VIRTUAL one never, a STORED one unless the publication
// sends them (genStored).
func leftOut(kind string, genStored bool) bool {
	return kind != "" && !(kind == genStoredKind && genStored)
}

// CheckGenerated reports a table's generated columns that capture does not
// see (ok false: it sees all of them, or the table has none). Postgres
// 14-17 never publish generated columns; 18 publishes the STORED ones with
// the publication's publish_generated_columns = stored (capture sets it
// when it creates publication), never the VIRTUAL ones.
func CheckGenerated(t Table, srv Server, publication string) (Finding, bool) {
	if len(t.Generated) == 0 {
		return Finding{}, false
	}
	why := fmt.Sprintf("Postgres %d does not publish generated columns (14-17 never do; 18 publishes the STORED ones)", srv.VersionNum/10000)
	fix := "compute them in the rules from the columns they are generated from (or make them ordinary columns)"
	if srv.VersionNum >= 180000 {
		var reasons []string
		if n := len(t.Generated) - len(t.storedLeftOut); n > 0 {
			reasons = append(reasons, "Postgres never publishes VIRTUAL generated columns")
		}
		if len(t.storedLeftOut) > 0 {
			reasons = append(reasons, fmt.Sprintf("publication %s does not publish STORED ones (%s) without publish_generated_columns = stored", publication, strings.Join(t.storedLeftOut, ", ")))
			fix = fmt.Sprintf("ALTER PUBLICATION %s SET (publish_generated_columns = stored); for the others, ", pgx.Identifier{publication}.Sanitize()) + fix
		}
		why = strings.Join(reasons, "; ")
	}
	return Finding{
		Check: "generated columns " + t.Name, Verdict: Warn,
		Found: fmt.Sprintf("%s not captured: %s, so no event carries them (the snapshot leaves them out too) and a rule reading one fails at load",
			strings.Join(t.Generated, ", "), why),
		Fix: fix,
	}, true
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
