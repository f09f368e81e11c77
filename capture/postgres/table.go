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
	Columns         []Column // in table order
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

func readTable(ctx context.Context, q querier, table string) (Table, error) {
	t := Table{Name: table}
	var ident string
	var index *string
	err := q.QueryRow(ctx, `
SELECT c.oid IS NOT NULL, coalesce(has_table_privilege(c.oid, 'SELECT'), false),
       coalesce(pg_has_role(c.relowner, 'USAGE'), false), coalesce(c.relreplident::text, ''),
       (SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)
FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`, t.quoted()).
		Scan(&t.Exists, &t.CanSelect, &t.Owned, &ident, &index)
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
       coalesce(a.attnum = ANY(pk.indkey), false), a.attnotnull
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, t.quoted())
	if err != nil {
		return t, fmt.Errorf("reading the columns of %s (pg_attribute): %w", table, err)
	}
	t.Columns, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Column, error) {
		var c Column
		err := r.Scan(&c.Name, &c.TypeOID, &c.Type, &c.ElemOID, &c.Key, &c.NotNull)
		return c, err
	})
	if err != nil {
		return t, fmt.Errorf("reading the columns of %s (pg_attribute): %w", table, err)
	}
	return t, nil
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
	out := make(map[string]Table, len(s.cfg.Tables))
	for _, name := range s.cfg.Tables {
		t, err := readTable(ctx, conn, name)
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
