package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// checkServer verifies the server version, wal_level and the role's
// REPLICATION attribute, returning every failed check joined.
func (s *Source) checkServer(ctx context.Context, conn *pgx.Conn) error {
	var (
		versionNum      int
		walLevel, role  string
		replication, su bool
	)
	err := conn.QueryRow(ctx, `
SELECT current_setting('server_version_num')::int, current_setting('wal_level'), current_user,
       r.rolreplication, r.rolsuper
FROM pg_roles r WHERE r.rolname = current_user`).Scan(&versionNum, &walLevel, &role, &replication, &su)
	if err != nil {
		return fmt.Errorf("checking the server settings of %s: %w", s.target(), err)
	}
	var errs []error
	if major := versionNum / 10000; major < MinServerVersion {
		errs = append(errs, &ServerTooOldError{Version: major, Min: MinServerVersion})
	}
	if walLevel != "logical" {
		errs = append(errs, &WALLevelError{Got: walLevel})
	}
	if !replication && !su {
		errs = append(errs, &PrivilegeError{Role: role, Privilege: "REPLICATION"})
	}
	return errors.Join(errs...)
}

// checkTables verifies every captured table exists and is readable.
func (s *Source) checkTables(ctx context.Context, conn *pgx.Conn) error {
	var errs []error
	for _, t := range s.cfg.Tables {
		schema, name := splitTable(t)
		var (
			exists, canSelect bool
			role              string
		)
		err := conn.QueryRow(ctx, `
SELECT to_regclass($1) IS NOT NULL,
       coalesce(has_table_privilege(to_regclass($1), 'SELECT'), false), current_user`,
			pgx.Identifier{schema, name}.Sanitize()).Scan(&exists, &canSelect, &role)
		switch {
		case err != nil:
			return fmt.Errorf("checking table %s: %w", t, err)
		case !exists:
			errs = append(errs, &TableNotFoundError{Table: t})
		case !canSelect:
			errs = append(errs, &PrivilegeError{Role: role, Privilege: "SELECT", Table: t})
		}
	}
	return errors.Join(errs...)
}

// warnReplicaIdentity logs, per table whose rules need old values, what
// its REPLICA IDENTITY will not provide. It returns the warnings too.
func (s *Source) warnReplicaIdentity(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	var warnings []string
	for _, t := range s.cfg.NeedOldValues {
		schema, name := splitTable(t)
		var ident string
		err := conn.QueryRow(ctx, `SELECT relreplident::text FROM pg_class WHERE oid = to_regclass($1)`,
			pgx.Identifier{schema, name}.Sanitize()).Scan(&ident)
		if err != nil {
			return nil, fmt.Errorf("reading the replica identity of %s: %w", t, err)
		}
		var what string
		switch ident {
		case "f":
			continue
		case "d":
			what = "DEFAULT: updates carry no old values and deletes only the primary key"
		case "i":
			what = "USING INDEX: updates and deletes carry only the index columns as old values"
		case "n":
			what = "NOTHING: updates and deletes carry no old values"
		}
		w := fmt.Sprintf("table %s has REPLICA IDENTITY %s, but rules read its old values; run ALTER TABLE %s REPLICA IDENTITY FULL", t, what, pgx.Identifier{schema, name}.Sanitize())
		s.log.Warn("capture: replica identity does not provide old values", "table", t, "replica_identity", ident, "fix", "ALTER TABLE "+pgx.Identifier{schema, name}.Sanitize()+" REPLICA IDENTITY FULL")
		warnings = append(warnings, w)
	}
	return warnings, nil
}

// slotInfo is a row of pg_replication_slots.
type slotInfo struct {
	exists    bool
	plugin    string
	database  string
	temporary bool
	activePID *int32
	walStatus *string
	confirmed contract.LSN
	restart   contract.LSN
}

func (s *Source) readSlot(ctx context.Context, conn *pgx.Conn) (slotInfo, error) {
	var (
		si                 slotInfo
		plugin, db         *string
		confirmed, restart *string
	)
	err := conn.QueryRow(ctx, `
SELECT plugin, database, temporary, active_pid, wal_status, confirmed_flush_lsn::text, restart_lsn::text
FROM pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot).Scan(&plugin, &db, &si.temporary, &si.activePID, &si.walStatus, &confirmed, &restart)
	if err == pgx.ErrNoRows {
		return si, nil
	}
	if err != nil {
		return si, fmt.Errorf("reading replication slot %q: %w", s.cfg.Slot, err)
	}
	si.exists = true
	if plugin != nil {
		si.plugin = *plugin
	}
	if db != nil {
		si.database = *db
	}
	if confirmed != nil {
		si.confirmed, _ = contract.ParseLSN(*confirmed)
	}
	if restart != nil {
		si.restart, _ = contract.ParseLSN(*restart)
	}
	return si, nil
}

// checkSlot turns an unusable existing slot into a typed error.
func (s *Source) checkSlot(si slotInfo) error {
	switch {
	case !si.exists:
		return nil
	case si.plugin != "pgoutput":
		return &SlotMismatchError{Slot: s.cfg.Slot, Reason: fmt.Sprintf("it is a physical slot or uses plugin %q, not pgoutput", si.plugin)}
	case si.database != s.database:
		return &SlotMismatchError{Slot: s.cfg.Slot, Reason: fmt.Sprintf("it belongs to database %q, not %q", si.database, s.database)}
	case si.walStatus != nil && *si.walStatus == "lost":
		return &SlotLostError{Slot: s.cfg.Slot}
	case si.activePID != nil:
		return &SlotInUseError{Slot: s.cfg.Slot, PID: int(*si.activePID)}
	}
	return nil
}

// ensurePublication creates the publication for the configured tables, or
// checks that an existing one publishes exactly them (adding missing ones
// only when AddMissingTables is set).
func (s *Source) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	pub := s.cfg.Publication
	mismatch, err := ComparePublication(ctx, conn, pub, s.cfg.Tables)
	if err != nil {
		return err
	}
	if mismatch == nil {
		sql := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", pgx.Identifier{pub}.Sanitize(), QuoteTables(s.cfg.Tables))
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("creating publication %q for %s: %w", pub, strings.Join(s.cfg.Tables, ", "), err)
		}
		s.log.Info("capture: created publication", "publication", pub, "tables", s.cfg.Tables)
		return nil
	}
	if len(mismatch.Missing) > 0 && s.cfg.AddMissingTables && !mismatch.AllTables && len(mismatch.Extra) == 0 && mismatch.Operations == "" {
		sql := fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", pgx.Identifier{pub}.Sanitize(), QuoteTables(mismatch.Missing))
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("adding %s to publication %q: %w", strings.Join(mismatch.Missing, ", "), pub, err)
		}
		s.log.Info("capture: added configured tables to the publication", "publication", pub, "tables", mismatch.Missing)
		mismatch.Missing = nil
	}
	if mismatch.AllTables || len(mismatch.Missing) > 0 || len(mismatch.Extra) > 0 || mismatch.Operations != "" {
		return mismatch
	}
	return nil
}

// ComparePublication reads publication pub and compares it with tables
// (schema-qualified): nil when there is no such publication, else what
// differs (no field set: it publishes exactly tables and every operation).
// chronicler check reads the publication with it too.
func ComparePublication(ctx context.Context, conn *pgx.Conn, pub string, tables []string) (*PublicationMismatchError, error) {
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
		schema, name := splitTable(t)
		q[i] = pgx.Identifier{schema, name}.Sanitize()
	}
	return strings.Join(q, ", ")
}
