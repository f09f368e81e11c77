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
	return PublicationPlan{Finding: f}
}

// absentPublication is the finding of a publication that does not exist:
// capture creates it if the role may.
func absentPublication(in PublicationCheck, f Finding, qpub string) Finding {
	create := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s;", qpub, QuoteTables(in.Tables))
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
		f.Found = "absent: chronicler run creates it FOR TABLE " + strings.Join(in.Tables, ", ")
	}
	return f
}

// ensurePublication carries out a plan whose finding let capture start:
// it creates the publication, or adds the missing tables.
func (s *Source) ensurePublication(ctx context.Context, conn *pgx.Conn, plan PublicationPlan) error {
	pub := pgx.Identifier{s.cfg.Publication}.Sanitize()
	switch {
	case plan.Create:
		sql := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", pub, QuoteTables(s.cfg.Tables))
		if s.ddl(sql) {
			return nil
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("creating publication %q for %s: %w", s.cfg.Publication, strings.Join(s.cfg.Tables, ", "), err)
		}
		s.log.Info("capture: created publication", "publication", s.cfg.Publication, "tables", s.cfg.Tables)
	case len(plan.Add) > 0:
		sql := fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", pub, QuoteTables(plan.Add))
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
	var allTables, ins, upd, del, trunc bool
	err := conn.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1`, pub).
		Scan(&allTables, &ins, &upd, &del, &trunc)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading publication %q (pg_publication): %w", pub, err)
	}
	m := &PublicationMismatchError{Publication: pub, AllTables: allTables}
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
	rows, err := conn.Query(ctx, `SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1`, pub)
	if err != nil {
		return nil, fmt.Errorf("reading the tables of publication %q (pg_publication_tables): %w", pub, err)
	}
	published, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the tables of publication %q (pg_publication_tables): %w", pub, err)
	}
	if !allTables {
		for _, t := range tables {
			if !slices.Contains(published, t) {
				m.Missing = append(m.Missing, t)
			}
		}
		for _, t := range published {
			if !slices.Contains(tables, t) {
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
