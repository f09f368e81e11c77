package preflight

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping"
)

// replicaIdentity reports, per existing configured table, whether its
// replica identity lets Postgres publish updates and deletes, and whether it
// sends the old values the rules (or postgres.need_old_values) read.
func (c *checker) replicaIdentity(pg *pgFacts, rf *ruleFacts) {
	needOld := map[string]bool{}
	for _, t := range c.cfg.Postgres.NeedOldValues {
		needOld[qualify(t)] = true
	}
	for _, t := range pg.tables {
		name := "postgres replica identity " + t.name
		full := fmt.Sprintf("ALTER TABLE %s REPLICA IDENTITY FULL;", t.quoted)
		var found string
		switch t.ident {
		case "f":
			c.add(name, OK, "FULL (old values of every column)", "")
			continue
		case "i":
			found = "USING INDEX " + t.index
		case "d":
			if len(t.key) == 0 {
				c.add(name, Fail, "DEFAULT and no primary key: Postgres refuses UPDATE and DELETE on a published table without a replica identity",
					full+" (or add a primary key)")
				continue
			}
			found = "DEFAULT (primary key " + strings.Join(t.key, ", ") + ")"
		case "n":
			c.add(name, Fail, "NOTHING: Postgres refuses UPDATE and DELETE on a published table without a replica identity",
				full+" (or ALTER TABLE ... REPLICA IDENTITY DEFAULT with a primary key)")
			continue
		default:
			found = "unknown (" + t.ident + ")"
		}
		var why []string
		if needOld[t.name] {
			why = append(why, "it is in postgres.need_old_values")
		}
		for _, p := range rf.oldReaders[t.name] {
			why = append(why, ruleAt(p)+" reads old values of non-key columns on update")
		}
		if len(why) > 0 {
			c.add(name, Warn, found+"; but "+strings.Join(why, "; ")+", which this identity does not send", full)
			continue
		}
		c.add(name, OK, found, "")
	}
}

func ruleAt(p mapping.Problem) string {
	loc := p.File
	if p.Line > 0 {
		loc += fmt.Sprintf(":%d:%d", p.Line, p.Col)
	}
	if p.Rule != "" {
		return fmt.Sprintf("rule %q (%s)", p.Rule, loc)
	}
	return loc
}

// publicationAndSlot checks the publication and the replication slot.
func (c *checker) publicationAndSlot(pg *pgFacts) {
	c.publication(pg)
	c.slot(pg)
}

// publication mirrors what capture does at start: create the publication
// FOR TABLE the configured tables when absent, else require it to publish
// exactly them and every operation (adding missing tables only with
// postgres.add_missing_tables).
func (c *checker) publication(pg *pgFacts) {
	pub := c.cfg.Postgres.Publication
	name := "postgres publication " + pub
	qpub := pgx.Identifier{pub}.Sanitize()
	tables := make([]string, len(c.cfg.Postgres.Tables))
	for i, t := range c.cfg.Postgres.Tables {
		tables[i] = qualify(t)
	}
	m, err := postgres.ComparePublication(pg.ctx, pg.conn, pub, tables)
	if err != nil {
		c.add(name, Fail, err.Error(), "check that the role may read pg_publication and pg_publication_tables")
		return
	}
	if m == nil {
		create := fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s;", qpub, postgres.QuoteTables(tables))
		var notOwned []string
		for _, t := range pg.tables {
			if !t.canOwner {
				notOwned = append(notOwned, t.name)
			}
		}
		var canCreate bool
		_ = pg.conn.QueryRow(pg.ctx, `SELECT has_database_privilege(current_database(), 'CREATE')`).Scan(&canCreate)
		switch {
		case !canCreate && !pg.super:
			c.add(name, Fail, "absent, and role "+pg.role+" may not create it (no CREATE on database "+pg.database+")",
				"run as the tables' owner: "+create)
		case len(notOwned) > 0:
			c.add(name, Fail, "absent, and role "+pg.role+" does not own "+strings.Join(notOwned, ", ")+" (needed to publish them)",
				"run as the tables' owner: "+create)
		default:
			c.add(name, OK, "absent: chronicler run creates it FOR TABLE "+strings.Join(tables, ", "), "")
		}
		return
	}
	if m.AllTables {
		c.add(name, Fail, "publishes ALL TABLES; chronicler publishes exactly postgres.tables",
			fmt.Sprintf("DROP PUBLICATION %s; (chronicler run creates it FOR TABLE %s), or set postgres.publication to another name", qpub, strings.Join(tables, ", ")))
		return
	}
	missing, extra := m.Missing, m.Extra
	var fails, fixes []string
	if m.Operations != "" {
		fails = append(fails, "does not publish every operation (insert, update, delete, truncate)")
		fixes = append(fixes, fmt.Sprintf("ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate');", qpub))
	}
	if len(extra) > 0 {
		fails = append(fails, "also publishes "+strings.Join(extra, ", ")+", which is not in postgres.tables")
		fixes = append(fixes, fmt.Sprintf("ALTER PUBLICATION %s DROP TABLE %s; (or add them to postgres.tables)", qpub, postgres.QuoteTables(extra)))
	}
	addSQL := fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s;", qpub, postgres.QuoteTables(missing))
	if len(missing) > 0 && (!c.cfg.Postgres.AddMissingTables || len(fails) > 0) {
		fails = append(fails, "lacks "+strings.Join(missing, ", "))
		fixes = append(fixes, addSQL+" (or set postgres.add_missing_tables: true)")
	}
	if len(fails) > 0 {
		c.add(name, Fail, strings.Join(fails, "; "), strings.Join(fixes, " "))
		return
	}
	if len(missing) > 0 {
		c.add(name, Warn, "lacks "+strings.Join(missing, ", ")+"; chronicler run adds them (postgres.add_missing_tables)",
			"nothing, if the role owns them; else run as their owner: "+addSQL)
		return
	}
	c.add(name, OK, "publishes "+strings.Join(tables, ", "), "")
}

// slot checks the replication slot and its lag.
func (c *checker) slot(pg *pgFacts) {
	slot := c.cfg.Postgres.Slot
	name := "postgres slot " + slot
	var (
		plugin, db, walStatus, appName, client *string
		activePID                              *int32
		temporary                              bool
		confirmed                              *string
		lag                                    *int64
	)
	err := pg.conn.QueryRow(pg.ctx, `
SELECT s.plugin, s.database, s.temporary, s.active_pid, s.wal_status, s.confirmed_flush_lsn::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
       r.application_name, r.client_addr::text
FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name = $1`, slot).Scan(&plugin, &db, &temporary, &activePID, &walStatus, &confirmed, &lag, &appName, &client)
	if err == pgx.ErrNoRows {
		c.add(name, OK, "absent: chronicler run creates it (and takes the initial snapshot per snapshot.mode)", "")
		return
	}
	if err != nil {
		c.add(name, Fail, "reading pg_replication_slots failed: "+err.Error(), "check that the role may read pg_replication_slots")
		return
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	qslot := "'" + slot + "'" // slot names are [a-z0-9_] (validated)
	drop := fmt.Sprintf("SELECT pg_drop_replication_slot(%s); (its position is lost: chronicler run creates it again and takes a new snapshot)", qslot)
	switch {
	case str(plugin) != "pgoutput":
		c.add(name, Fail, fmt.Sprintf("exists, but is a physical slot or uses plugin %q, not pgoutput", str(plugin)),
			"set postgres.slot to another name, or "+drop)
		return
	case str(db) != pg.database:
		c.add(name, Fail, fmt.Sprintf("exists, but belongs to database %q, not %q", str(db), pg.database),
			"set postgres.slot to another name, or "+drop)
		return
	case str(walStatus) == "lost":
		c.add(name, Fail, "wal_status lost: Postgres removed WAL the slot still needed; changes were lost",
			drop+" Then raise max_slot_wal_keep_size so a stopped chronicler does not lose its slot again")
		return
	case activePID != nil:
		who := fmt.Sprintf("pid %d", *activePID)
		if appName != nil && *appName != "" {
			who += ", application_name " + *appName
		}
		if client != nil && *client != "" {
			who += ", from " + *client
		}
		c.add(name, Warn, fmt.Sprintf("pgoutput, active: held by %s (another chronicler instance, or the active HA peer)", who),
			"nothing if it is the active HA peer (this instance would wait as standby); else stop the other instance, or SELECT pg_terminate_backend("+fmt.Sprint(*activePID)+");")
	default:
		st := str(walStatus)
		found := fmt.Sprintf("pgoutput, inactive, confirmed_flush_lsn %s", str(confirmed))
		if st != "" && st != "reserved" {
			c.add(name, Warn, found+", wal_status "+st+": WAL it needs is close to being removed",
				"start chronicler run soon, or raise max_slot_wal_keep_size")
		} else {
			c.add(name, OK, found, "")
		}
	}
	if lag != nil {
		found := fmt.Sprintf("%d bytes of WAL not yet confirmed (pg_current_wal_lsn - confirmed_flush_lsn)", *lag)
		if *lag > c.opts.LagWarnBytes {
			c.add(name+" lag", Warn, found+fmt.Sprintf(", above %d", c.opts.LagWarnBytes),
				"run chronicler to consume it; if the slot is abandoned, "+drop+": Postgres keeps this WAL on disk until then")
		} else {
			c.add(name+" lag", OK, found, "")
		}
	}
}
