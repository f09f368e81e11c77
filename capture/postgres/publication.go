package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PublicationPlan is the outcome of [CheckPublication]: the finding, and
// what Source does about the publication when the finding lets it start.
type PublicationPlan struct {
	Finding Finding
	Create  bool     // absent: CREATE PUBLICATION ... FOR TABLE the tables
	Add     []string // tables to add (postgres.add_missing_tables)
}

// PublicationCheck is what [CheckPublication] compares.
type PublicationCheck struct {
	Publication      string
	Tables           []string // the configured tables, qualified
	AddMissingTables bool
	Server           Server  // the role and its privileges
	Existing         []Table // the configured tables that exist (for ownership)
}

// CheckPublication applies capture's rules to the publication as read
// (m: nil when absent; see [Conn.ComparePublication]): an absent one is
// created FOR TABLE the configured tables when the role may (CREATE on the
// database and owner of every table, or superuser); an existing one must
// publish exactly them and every operation, except that missing tables are
// added with AddMissingTables (a Warn: the role must own them). It never
// accepts FOR ALL TABLES or extra tables.
func CheckPublication(in PublicationCheck, m *PublicationMismatchError) PublicationPlan {
	f := Finding{Check: "publication " + in.Publication}
	qpub := pgx.Identifier{in.Publication}.Sanitize()
	if m == nil {
		return PublicationPlan{Finding: absentPublication(in, f, qpub), Create: true}
	}
	if m.AllTables {
		f.Verdict, f.Err = Fail, m
		f.Found = "publishes ALL TABLES; chronicler publishes exactly postgres.tables"
		f.Fix = fmt.Sprintf("DROP PUBLICATION %s; (chronicler run creates it FOR TABLE %s), or set postgres.publication to another name", qpub, strings.Join(in.Tables, ", "))
		return PublicationPlan{Finding: f}
	}
	var fails, fixes []string
	if leaves := leafNamed(in.Existing, m); len(leaves) > 0 {
		m.LeafNames = leaves
		fails = append(fails, "does not publish partitioned "+strings.Join(leaves, ", ")+
			" via the partition root (publish_via_partition_root is off): their partitions' changes would come under the partitions' names, so rules on the partitioned table would never see them")
		fixes = append(fixes, fmt.Sprintf("ALTER PUBLICATION %s SET (publish_via_partition_root = true);", qpub))
	}
	if m.Operations != "" {
		fails = append(fails, "does not publish every operation (insert, update, delete, truncate)")
		fixes = append(fixes, fmt.Sprintf("ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate');", qpub))
	}
	if len(m.Extra) > 0 {
		fails = append(fails, "also publishes "+strings.Join(m.Extra, ", ")+", which is not in postgres.tables")
		fixes = append(fixes, fmt.Sprintf("ALTER PUBLICATION %s DROP TABLE %s; (or add them to postgres.tables)", qpub, QuoteTables(m.Extra)))
	}
	addSQL := fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s;", qpub, QuoteTables(m.Missing))
	if len(m.Missing) > 0 && (!in.AddMissingTables || len(fails) > 0) {
		fails = append(fails, "lacks "+strings.Join(m.Missing, ", "))
		fixes = append(fixes, addSQL+" (or set postgres.add_missing_tables: true)")
	}
	switch {
	case len(fails) > 0:
		f.Verdict, f.Err = Fail, m
		f.Found, f.Fix = strings.Join(fails, "; "), strings.Join(fixes, " ")
		return PublicationPlan{Finding: f}
	case len(m.Missing) > 0:
		f.Verdict = Warn
		f.Found = "lacks " + strings.Join(m.Missing, ", ") + "; chronicler run adds them (postgres.add_missing_tables)"
		f.Fix = "nothing, if the role owns them; else run as their owner: " + addSQL
		return PublicationPlan{Finding: f, Add: m.Missing}
	}
	f.Found = "publishes " + strings.Join(in.Tables, ", ")
	if m.ViaRoot {
		f.Found += " (with publish_via_partition_root: a partitioned table's changes come under its own name)"
	}
	return PublicationPlan{Finding: f}
}

// leafNamed returns the configured partitioned tables (of existing) that
// the publication publishes (or, once added, would publish) under their
// partitions' names: all of them when it lacks publish_via_partition_root.
// A published one is not in m.Missing (comparePublication counts a
// partition's root), so the fix is never ADD TABLE of a member, which
// Postgres refuses.
func leafNamed(existing []Table, m *PublicationMismatchError) []string {
	if m.ViaRoot || m.AllTables {
		return nil
	}
	var out []string
	for _, t := range existing {
		if t.Partitioned {
			out = append(out, t.Name)
		}
	}
	return out
}

// withClause is the WITH clause of the publication capture creates:
// publish_via_partition_root when a configured table is partitioned (its
// partitions' changes are then published under its name), and on Postgres
// 18 publish_generated_columns = stored (STORED generated columns are
// then sent, and captured, like the others).
func withClause(existing []Table, srv Server) string {
	var opts []string
	for _, t := range existing {
		if t.Partitioned {
			opts = append(opts, "publish_via_partition_root = true")
			break
		}
	}
	if srv.VersionNum >= 180000 {
		opts = append(opts, "publish_generated_columns = stored")
	}
	if len(opts) == 0 {
		return ""
	}
	return " WITH (" + strings.Join(opts, ", ") + ")"
}

// publishesGenerated reports whether publication pub sends STORED
// generated columns: on Postgres 18 when it has publish_generated_columns
// = stored (pg_publication.pubgencols 's'), or when it does not exist yet
// (capture creates it so, [withClause]); never before 18.
func publishesGenerated(ctx context.Context, q querier, pub string) (bool, error) {
	var version int
	if err := q.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return false, fmt.Errorf("reading server_version_num: %w", err)
	}
	if version < 180000 {
		return false, nil
	}
	var gen string
	err := q.QueryRow(ctx, "SELECT pubgencols::text FROM pg_publication WHERE pubname = $1", pub).Scan(&gen)
	if err == pgx.ErrNoRows {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading publication %q (pg_publication.pubgencols): %w", pub, err)
	}
	return gen == genStoredKind, nil
}

// absentPublication is the finding of a publication that does not exist:
// capture creates it if the role may.
func absentPublication(in PublicationCheck, f Finding, qpub string) Finding {
	create := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s%s;", qpub, QuoteTables(in.Tables), withClause(in.Existing, in.Server))
	srv := in.Server
	var notOwned []string
	for _, t := range in.Existing {
		if !t.Owned && !srv.Superuser {
			notOwned = append(notOwned, t.Name)
		}
	}
	err := &PublicationCreateError{Publication: in.Publication, Role: srv.Role, Database: srv.Database, NotOwned: notOwned}
	switch {
	case !srv.CanCreate && !srv.Superuser:
		err.NoCreate = true
		f.Verdict, f.Err = Fail, err
		f.Found = "absent, and role " + srv.Role + " may not create it (no CREATE on database " + srv.Database + ")"
		f.Fix = "run as the tables' owner: " + create
	case len(notOwned) > 0:
		f.Verdict, f.Err = Fail, err
		f.Found = "absent, and role " + srv.Role + " does not own " + strings.Join(notOwned, ", ") + " (needed to publish them)"
		f.Fix = "run as the tables' owner: " + create
	default:
		f.Found = "absent: chronicler run creates it FOR TABLE " + strings.Join(in.Tables, ", ") + withClause(in.Existing, in.Server)
	}
	return f
}

// ensurePublication carries out a plan whose finding let capture start:
// it creates the publication (with [withClause]'s options), or adds the
// missing tables.
func (s *Source) ensurePublication(ctx context.Context, conn *pgx.Conn, plan PublicationPlan, names []string, tables []Table, srv Server) error {
	pub := pgx.Identifier{s.cfg.Publication}.Sanitize()
	switch {
	case plan.Create:
		sql := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s%s", pub, QuoteTables(names), withClause(tables, srv))
		if s.ddl(sql) {
			return nil
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("creating publication %q for %s: %w", s.cfg.Publication, strings.Join(names, ", "), err)
		}
		s.log.Info("capture: created publication", "publication", s.cfg.Publication, "tables", names)
	case len(plan.Add) > 0:
		sql := alterAdd(s.cfg.Publication, plan.Add)
		if s.ddl(sql) {
			return nil
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("adding %s to publication %q: %w", strings.Join(plan.Add, ", "), s.cfg.Publication, err)
		}
		s.log.Info("capture: added configured tables to the publication", "publication", s.cfg.Publication, "tables", plan.Add)
	}
	return nil
}

// comparePublication reads publication pub and compares it with tables
// (schema-qualified): nil when there is no such publication, else what
// differs (no field set: it publishes exactly tables and every operation).
func comparePublication(ctx context.Context, conn querier, pub string, tables []string) (*PublicationMismatchError, error) {
	var allTables, ins, upd, del, trunc, viaRoot bool
	err := conn.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot FROM pg_publication WHERE pubname = $1`, pub).
		Scan(&allTables, &ins, &upd, &del, &trunc, &viaRoot)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading publication %q (pg_publication): %w", pub, err)
	}
	m := &PublicationMismatchError{Publication: pub, AllTables: allTables, ViaRoot: viaRoot}
	if !(ins && upd && del && trunc) {
		var ops []string
		for _, o := range []struct {
			on   bool
			name string
		}{{ins, "insert"}, {upd, "update"}, {del, "delete"}, {trunc, "truncate"}} {
			if o.on {
				ops = append(ops, o.name)
			}
		}
		m.Operations = strings.Join(ops, ", ")
		if m.Operations == "" {
			m.Operations = "nothing"
		}
	}
	// Without publish_via_partition_root the view lists a partitioned
	// table's leaf partitions instead of the table: each row carries the
	// root of its partition tree, so a configured partitioned table counts
	// as published (under its partitions' names, which CheckPublication
	// refuses) and its partitions are not extra.
	rows, err := conn.Query(ctx, `
SELECT t.schemaname || '.' || t.tablename, coalesce(rn.nspname || '.' || rc.relname, '')
FROM pg_publication_tables t
LEFT JOIN pg_class rc ON rc.oid = pg_partition_root(format('%I.%I', t.schemaname, t.tablename)::regclass)
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE t.pubname = $1`, pub)
	if err != nil {
		return nil, fmt.Errorf("reading the tables of publication %q (pg_publication_tables): %w", pub, err)
	}
	var published, roots []string
	var name, root string
	_, err = pgx.ForEachRow(rows, []any{&name, &root}, func() error {
		published = append(published, name)
		roots = append(roots, root)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the tables of publication %q (pg_publication_tables): %w", pub, err)
	}
	if !allTables {
		for _, t := range tables {
			if !slices.Contains(published, t) && !slices.Contains(roots, t) {
				m.Missing = append(m.Missing, t)
			}
		}
		for i, t := range published {
			if !slices.Contains(tables, t) && !slices.Contains(tables, roots[i]) {
				m.Extra = append(m.Extra, t)
			}
		}
	}
	return m, nil
}

// QuoteTables quotes schema-qualified table names for SQL, comma-separated.
func QuoteTables(tables []string) string {
	q := make([]string, len(tables))
	for i, t := range tables {
		schema, name := SplitTable(t)
		q[i] = pgx.Identifier{schema, name}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// ddl logs a statement capture runs against the legacy database, with its
// exact text; under DryRun it records it instead and reports true: do not
// run it.
func (s *Source) ddl(sql string) (dryRun bool) {
	if s.cfg.DryRun {
		s.planned = append(s.planned, sql)
		s.log.Info("capture: dry run: would run", "sql", sql)
		return true
	}
	s.log.Info("capture: running", "sql", sql)
	return false
}
