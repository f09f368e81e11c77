package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"

	cpg "github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/mapping"
)

// pgFacts is what the Postgres checks read, for the checks that follow.
// capture/postgres reads and judges; this file only prints its findings.
type pgFacts struct {
	conn       *cpg.Conn
	ctx        context.Context
	cancel     context.CancelFunc
	srv        cpg.Server
	slot       cpg.SlotInfo
	slotExists bool
	tables     []cpg.Table // the configured tables that exist
}

func (f *pgFacts) close() {
	if f.conn != nil {
		_ = f.conn.Close(context.Background())
	}
	f.cancel()
}

// pgSettings are the connection settings of check and status (app: their
// application_name).
func pgSettings(cfg *config.Config, app string) cpg.ConnSettings {
	return cfg.PostgresSettings(app)
}

// finding adds a finding of capture/postgres as a check named "postgres ...".
func (c *checker) finding(f cpg.Finding) {
	st := OK
	switch f.Verdict {
	case cpg.Warn:
		st = Warn
	case cpg.Fail:
		st = Fail
	}
	c.add("postgres "+f.Check, st, f.Found, f.Fix)
}

func (c *checker) findings(fs []cpg.Finding) {
	for _, f := range fs {
		c.finding(f)
	}
}

// postgres runs the connection, server, privilege and table checks. It
// returns nil when Postgres could not be reached (a Fail check says why).
func (c *checker) postgres(ctx context.Context) *pgFacts {
	f := &pgFacts{}
	f.ctx, f.cancel = context.WithTimeout(ctx, c.opts.Timeout)
	var err error
	f.conn, err = cpg.Connect(f.ctx, pgSettings(c.cfg, "chronicler-check"))
	var (
		bad *cpg.ConfigError
		ce  *cpg.ConnectError
		te  *cpg.TLSError
	)
	switch {
	case errors.As(err, &bad):
		c.add("postgres "+bad.Field, Fail, bad.Reason, "fix postgres."+bad.Field)
	case errors.As(err, &te):
		fix := "name the CA that signed the server's certificate as sslrootcert in postgres.url, and connect by a host name the certificate lists"
		if te.Refused {
			fix = "turn ssl on on the server, or set sslmode=disable in postgres.url to connect without TLS"
		}
		c.add("postgres tls", Fail, te.Error(), fix)
	case errors.As(err, &ce):
		c.add("postgres reachable", Fail, fmt.Sprintf("%s as %s: %v", ce.Target, ce.User, ce.Err),
			"check postgres.url (host, port, database, user), the password (postgres.password or password_file) and pg_hba.conf, and that the server runs")
	case err != nil:
		c.add("postgres reachable", Fail, err.Error(), "check postgres.url")
	}
	if err != nil {
		f.cancel()
		return nil
	}
	if f.srv, err = f.conn.ReadServer(f.ctx); err == nil {
		f.slot, f.slotExists, err = f.conn.ReadSlot(f.ctx, c.cfg.Postgres.Slot)
	}
	if err != nil {
		c.add("postgres reachable", Fail, fmt.Sprintf("%s: connected, but reading the server settings failed: %v", f.conn.Target(), err),
			"check that the role may read pg_roles, pg_replication_slots and pg_stat_activity")
		f.close()
		return nil
	}
	c.add("postgres reachable", OK, fmt.Sprintf("%s as %s", f.conn.Target(), f.srv.Role), "")
	c.finding(cpg.CheckTransport(f.conn.Transport()))
	c.findings(cpg.CheckServer(f.srv, f.slot, f.slotExists))
	genStored, err := f.conn.PublishesGenerated(f.ctx, c.cfg.Postgres.Publication)
	if err != nil {
		c.add("postgres publication "+c.cfg.Postgres.Publication, Fail, err.Error(), "check that the role may read pg_publication")
	}
	for _, name := range c.tables() {
		t, err := f.conn.ReadTable(f.ctx, name, genStored)
		if err != nil {
			c.add("postgres table "+name, Fail, err.Error(), "check that the role may read pg_class, pg_index and pg_attribute")
			continue
		}
		c.finding(cpg.CheckTable(t, f.srv))
		if g, ok := cpg.CheckGenerated(t, f.srv, c.cfg.Postgres.Publication); ok {
			c.finding(g)
		}
		if t.Exists {
			f.tables = append(f.tables, t)
		}
	}
	return f
}

// tables are postgres.tables, qualified ("schema.table"; config checked
// their shape).
func (c *checker) tables() []string {
	return qualified(c.cfg.Postgres.Tables)
}

func qualified(tables []string) []string {
	out := make([]string, len(tables))
	for i, t := range tables {
		out[i], _ = cpg.QualifyTable(t)
	}
	return out
}

// replicaIdentity reports, per existing configured table, whether its
// replica identity lets Postgres publish updates and deletes, and whether it
// sends the old values the rules (or postgres.need_old_values) read.
func (c *checker) replicaIdentity(pg *pgFacts, rf *ruleFacts) {
	needOld := qualified(c.cfg.Postgres.NeedOldValues)
	for _, t := range pg.tables {
		var readers []string
		if slices.Contains(needOld, t.Name) {
			readers = append(readers, cpg.NeedOldValuesReason)
		}
		for _, p := range rf.oldReaders[t.Name] {
			readers = append(readers, ruleAt(p)+" reads old values of non-key columns on update")
		}
		c.finding(cpg.CheckReplicaIdentity(t, readers))
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

// publicationAndSlot checks the publication, the replication slot and
// what a failover needs.
func (c *checker) publicationAndSlot(pg *pgFacts) {
	c.publication(pg)
	c.slot(pg)
	c.failover(pg)
}

// failover applies capture's failover rules: on a standby, that capture
// waits for its promotion and, with postgres.failover_slot, the standby's
// side of slot synchronization; on a primary, with postgres.failover_slot,
// the major, the slot's failover flag, synchronized_standby_slots and the
// standbys' synchronization sessions.
func (c *checker) failover(pg *pgFacts) {
	fo, err := pg.conn.ReadFailover(pg.ctx, pg.srv)
	if err != nil {
		c.add("postgres failover", Fail, err.Error(), "check that the role may read pg_settings, pg_replication_slots and pg_stat_activity")
		return
	}
	c.findings(cpg.CheckFailover(fo, pg.slot, pg.slotExists, c.cfg.Postgres.FailoverSlot))
}

// publication applies capture's publication rules (the same it applies at
// start) to the publication as it is.
func (c *checker) publication(pg *pgFacts) {
	pub := c.cfg.Postgres.Publication
	tables := c.tables()
	m, err := pg.conn.ComparePublication(pg.ctx, pub, tables)
	if err != nil {
		c.add("postgres publication "+pub, Fail, err.Error(), "check that the role may read pg_publication and pg_publication_tables")
		return
	}
	c.finding(cpg.CheckPublication(cpg.PublicationCheck{Publication: pub, Tables: tables,
		AddMissingTables: c.cfg.Postgres.AddMissingTables, Server: pg.srv, Existing: pg.tables}, m).Finding)
}

// slot applies capture's slot rules and reports the slot's lag and the
// WAL the server keeps for it.
func (c *checker) slot(pg *pgFacts) {
	c.findings(cpg.CheckSlot(pg.slot, pg.slotExists, pg.srv.Database, c.opts.LagWarnBytes))
	c.slotAbsent = !pg.slotExists
	if pg.slotExists {
		c.finding(cpg.CheckRetainedWAL(pg.slot))
	}
}
