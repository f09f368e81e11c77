package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	cpg "github.com/chronicler-dev/chronicler/capture/postgres"
)

// pgFacts is what the Postgres checks learnt, for the checks that follow.
type pgFacts struct {
	conn     *pgx.Conn
	ctx      context.Context
	cancel   context.CancelFunc
	target   string // host:port/database
	database string
	role     string
	super    bool
	tables   []tableFacts // the configured tables that exist
}

func (f *pgFacts) close() {
	if f.conn != nil {
		_ = f.conn.Close(context.Background())
	}
	f.cancel()
}

// tableFacts describes one configured table.
type tableFacts struct {
	name     string // schema.table
	quoted   string // "schema"."table"
	ident    string // pg_class.relreplident: d, n, f, i
	key      []string
	index    string // the replica identity index, for ident i
	columns  []cpg.Column
	canOwner bool // the role owns the table (may add it to a publication)
}

// pgTarget names a connection's server without its credentials.
func pgTarget(pc *pgconn.Config) string {
	return fmt.Sprintf("%s:%d/%s", pc.Host, pc.Port, pc.Database)
}

// postgres runs the connection, server, privilege and table checks. It
// returns nil when Postgres could not be reached (a Fail check says why).
func (c *checker) postgres(ctx context.Context) *pgFacts {
	ccfg, err := pgx.ParseConfig(c.cfg.PostgresURL())
	if err != nil {
		c.add("postgres url", Fail, "not a valid connection string: "+err.Error(), "fix postgres.url (URL or key=value form)")
		return nil
	}
	pc := &ccfg.Config
	f := &pgFacts{target: pgTarget(pc), database: pc.Database}
	f.ctx, f.cancel = context.WithTimeout(ctx, c.opts.Timeout)
	f.conn, err = pgx.ConnectConfig(f.ctx, ccfg)
	if err != nil {
		c.add("postgres reachable", Fail, fmt.Sprintf("%s as %s: %v", f.target, pc.User, connErr(err)),
			"check postgres.url (host, port, database, user), the password (postgres.password or password_file) and pg_hba.conf, and that the server runs")
		f.cancel()
		return nil
	}
	var (
		version             string
		versionNum          int
		walLevel            string
		repl                bool
		maxSlots, usedSlots int
		maxSenders, senders int
		slotExists          bool
	)
	err = f.conn.QueryRow(f.ctx, `
SELECT current_setting('server_version'), current_setting('server_version_num')::int,
       current_setting('wal_level'), current_user, r.rolreplication, r.rolsuper,
       current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int,
       current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int,
       EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)
FROM pg_roles r WHERE r.rolname = current_user`, c.cfg.Postgres.Slot).Scan(
		&version, &versionNum, &walLevel, &f.role, &repl, &f.super,
		&maxSlots, &usedSlots, &maxSenders, &senders, &slotExists)
	if err != nil {
		c.add("postgres reachable", Fail, fmt.Sprintf("%s: connected, but reading the server settings failed: %v", f.target, err),
			"check that the role may read pg_roles, pg_replication_slots and pg_stat_activity")
		f.close()
		return nil
	}
	c.add("postgres reachable", OK, fmt.Sprintf("%s as %s", f.target, f.role), "")

	if major := versionNum / 10000; major < cpg.MinServerVersion {
		c.add("postgres version", Fail, version, fmt.Sprintf("upgrade Postgres to %d or later (pgoutput protocol version 2)", cpg.MinServerVersion))
	} else {
		c.add("postgres version", OK, version, "")
	}

	if walLevel != "logical" {
		c.add("postgres wal_level", Fail, walLevel, "ALTER SYSTEM SET wal_level = logical; then restart Postgres")
	} else {
		c.add("postgres wal_level", OK, walLevel, "")
	}

	slotsFound := fmt.Sprintf("%d of %d in use", usedSlots, maxSlots)
	switch {
	case slotExists:
		c.add("postgres max_replication_slots", OK, slotsFound+fmt.Sprintf(" (slot %s among them)", c.cfg.Postgres.Slot), "")
	case usedSlots >= maxSlots:
		c.add("postgres max_replication_slots", Fail, slotsFound+fmt.Sprintf("; no room for slot %s", c.cfg.Postgres.Slot),
			fmt.Sprintf("ALTER SYSTEM SET max_replication_slots = %d; then restart Postgres (or drop an unused slot)", usedSlots+1))
	default:
		c.add("postgres max_replication_slots", OK, slotsFound, "")
	}
	sendersFound := fmt.Sprintf("%d of %d in use", senders, maxSenders)
	if senders >= maxSenders {
		c.add("postgres max_wal_senders", Fail, sendersFound+"; no room for chronicler's replication connection",
			fmt.Sprintf("ALTER SYSTEM SET max_wal_senders = %d; then restart Postgres", senders+1))
	} else {
		c.add("postgres max_wal_senders", OK, sendersFound, "")
	}

	switch {
	case f.super:
		c.add("postgres role "+f.role, OK, "superuser", "")
	case repl:
		c.add("postgres role "+f.role, OK, "REPLICATION", "")
	default:
		c.add("postgres role "+f.role, Fail, "neither REPLICATION nor superuser",
			fmt.Sprintf("ALTER ROLE %s REPLICATION;", pgx.Identifier{f.role}.Sanitize()))
	}

	for _, t := range c.cfg.Postgres.Tables {
		c.table(f, qualify(t))
	}
	return f
}

// connErr is the driver's connection error; pgconn's messages name host,
// user and database, never the password.
func connErr(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	return err
}

// qualify turns "t" into "public.t".
func qualify(t string) string {
	if strings.Contains(t, ".") {
		return t
	}
	return "public." + t
}

func splitTable(t string) (schema, name string) {
	schema, name, _ = strings.Cut(t, ".")
	return schema, name
}

// table checks one configured table: it exists and the role may read it.
func (c *checker) table(f *pgFacts, name string) {
	schema, rel := splitTable(name)
	quoted := pgx.Identifier{schema, rel}.Sanitize()
	var (
		exists, canSelect, owner bool
		ident                    string
		index                    *string
	)
	err := f.conn.QueryRow(f.ctx, `
SELECT to_regclass($1) IS NOT NULL,
       coalesce(has_table_privilege(to_regclass($1), 'SELECT'), false),
       coalesce((SELECT pg_has_role(c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = to_regclass($1)), false),
       coalesce((SELECT c.relreplident::text FROM pg_class c WHERE c.oid = to_regclass($1)), ''),
       (SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisreplident)`,
		quoted).Scan(&exists, &canSelect, &owner, &ident, &index)
	check := "postgres table " + name
	switch {
	case err != nil:
		c.add(check, Fail, "reading its catalog entry failed: "+err.Error(), "check that the role may read pg_class and pg_index")
		return
	case !exists:
		c.add(check, Fail, "does not exist in database "+f.database,
			"create it, or remove it from postgres.tables (names are schema.table, case-sensitive)")
		return
	case !canSelect:
		c.add(check, Fail, "exists, but role "+f.role+" may not SELECT it (the snapshot reads it)",
			fmt.Sprintf("GRANT SELECT ON %s TO %s;", quoted, pgx.Identifier{f.role}.Sanitize()))
	default:
		c.add(check, OK, "exists, SELECT granted", "")
	}
	tf := tableFacts{name: name, quoted: quoted, ident: ident, canOwner: owner || f.super}
	if index != nil {
		tf.index = *index
	}
	cols, err := cpg.TableColumns(f.ctx, f.conn, name)
	if err != nil {
		c.add(check+" columns", Fail, err.Error(), "check that the role may read pg_attribute")
		return
	}
	tf.columns = cols
	for _, col := range cols {
		if col.Key {
			tf.key = append(tf.key, col.Name)
		}
	}
	f.tables = append(f.tables, tf)
}
