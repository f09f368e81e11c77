package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// capturedSet is the captured tables and postgres.add_missing_tables as
// now in force: set by New, replaced (never changed) by AddTables.
type capturedSet struct {
	tables     []string // qualified, in configuration order
	addMissing bool
}

// captured returns the captured set in force. Safe for concurrent use; the
// slice must not be changed.
func (s *Source) captured() *capturedSet { return s.set.Load() }

// Tables returns the captured tables ("schema.table"): postgres.tables at
// start, plus those a reload added ([Source.AddTables]). Safe for
// concurrent use.
func (s *Source) Tables() []string { return slices.Clone(s.captured().tables) }

// TableAddition is a checked addition of tables to a running Source, made
// by [Source.PrepareTables] and carried out by [Source.AddTables].
type TableAddition struct {
	// Tables are the tables to add as described now (columns, key), for
	// the rule check; empty when nothing is added.
	Tables []Table
	// Publish are the tables the publication lacks: AddTables runs ALTER
	// PUBLICATION ... ADD TABLE for them (postgres.add_missing_tables).
	Publish    []string
	names      []string // the whole new set, qualified, in configuration order
	addMissing bool
}

// Names returns the names of the tables to add.
func (a *TableAddition) Names() []string {
	out := make([]string, len(a.Tables))
	for i, t := range a.Tables {
		out[i] = t.Name
	}
	return out
}

// PrepareTables checks a new postgres.tables (tables, as the configuration
// file says now) against the captured set and the database, changing
// nothing: a table dropped from the list is a *[TablesRemovedError]; each
// new one must pass the checks a session start applies ([CheckTable],
// [CheckReplicaIdentity]: exists, SELECT granted, a replica identity that
// lets Postgres publish its updates and deletes), else a *[TableAddError]
// naming the table and the fix. The publication must publish the new
// tables already, or addMissing (postgres.add_missing_tables) must allow
// capture to add them and the role own them ([CheckPublication]'s rules),
// else a *[TableAddError] with the ALTER PUBLICATION statement to run.
// Safe for concurrent use with Run.
func (s *Source) PrepareTables(ctx context.Context, tables []string, addMissing bool) (*TableAddition, error) {
	cur := s.captured()
	names, err := qualifyAll(tables)
	if err != nil {
		return nil, err
	}
	var removed, added []string
	for _, t := range cur.tables {
		if !slices.Contains(names, t) {
			removed = append(removed, t)
		}
	}
	if len(removed) > 0 {
		return nil, &TablesRemovedError{Tables: removed, Publication: s.cfg.Publication}
	}
	for _, t := range names {
		if !slices.Contains(cur.tables, t) {
			added = append(added, t)
		}
	}
	a := &TableAddition{names: names, addMissing: addMissing}
	if len(added) == 0 {
		return a, nil
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("checking the tables to add: %w", err)
	}
	defer conn.Close(context.Background())
	srv, err := readServer(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("checking the tables to add on %s: %w", s.target(), err)
	}
	for _, name := range added {
		t, err := readTable(ctx, conn, name, s.genStored.Load())
		if err != nil {
			return nil, err
		}
		if err := s.checkAdded(t, srv); err != nil {
			return nil, err
		}
		a.Tables = append(a.Tables, t)
	}
	if a.Publish, err = s.planPublish(ctx, conn, a, srv); err != nil {
		return nil, err
	}
	return a, nil
}

// qualifyAll qualifies table names ("t" is "public.t"); a bad or repeated
// name is a *ConfigError, as at New.
func qualifyAll(tables []string) ([]string, error) {
	c := Config{Tables: slices.Clone(tables)}
	var errs []error
	c.validateTables(func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c.Tables, nil
}

// checkAdded applies the session start's table checks to a table to add:
// the first failed finding refuses it; warnings are logged.
func (s *Source) checkAdded(t Table, srv Server) error {
	findings := []Finding{CheckTable(t, srv)}
	if t.Exists {
		findings = append(findings, s.checkIdentity(t))
	}
	if f, ok := CheckGenerated(t, srv, s.cfg.Publication); ok {
		findings = append(findings, f)
	}
	for _, f := range findings {
		switch {
		case f.Verdict == Fail:
			return &TableAddError{Table: t.Name, Found: f.Found, Fix: f.Fix, Err: f.Err}
		case f.Verdict == Warn:
			s.log.Warn("capture: "+f.Check, "found", f.Found, "fix", f.Fix)
		}
	}
	return nil
}

// planPublish reads the publication and returns the tables capture must add
// to it (the new ones it lacks): refused, with the statement to run, when
// addMissing is off or the role may not (it must own the table).
func (s *Source) planPublish(ctx context.Context, conn *pgx.Conn, a *TableAddition, srv Server) ([]string, error) {
	m, err := comparePublication(ctx, conn, s.cfg.Publication, a.names)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, &TableAddError{Table: strings.Join(a.Names(), ", "), Found: "publication " + s.cfg.Publication + " does not exist",
			Fix: "capture creates it when it starts streaming: reload again once it streams (or restart it, if someone dropped the publication)", Err: &PublicationMismatchError{Publication: s.cfg.Publication}}
	}
	plan := CheckPublication(PublicationCheck{Publication: s.cfg.Publication, Tables: a.names,
		AddMissingTables: a.addMissing, Server: srv, Existing: a.Tables}, m)
	if plan.Finding.Verdict == Fail {
		return nil, &TableAddError{Table: strings.Join(a.Names(), ", "), Found: "publication " + s.cfg.Publication + " " + plan.Finding.Found,
			Fix: plan.Finding.Fix, Err: plan.Finding.Err}
	}
	for _, t := range a.Tables {
		if slices.Contains(plan.Add, t.Name) && !t.Owned && !srv.Superuser {
			return nil, &TableAddError{Table: t.Name, Found: "role " + srv.Role + " does not own it, so it may not add it to publication " + s.cfg.Publication,
				Fix: "run as its owner: " + alterAdd(s.cfg.Publication, []string{t.Name}) + ";"}
		}
	}
	return plan.Add, nil
}

// alterAdd is the statement that adds tables to publication pub.
func alterAdd(pub string, tables []string) string {
	return fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE %s", pgx.Identifier{pub}.Sanitize(), QuoteTables(tables))
}

// AddTables carries out a checked addition (PrepareTables), in this order:
// the publication gets the tables it lacks (ALTER PUBLICATION ... ADD
// TABLE, logged with its text; pgoutput publishes a table's changes from
// that statement's commit on, in WAL order); the captured set grows (the
// next session's checks, Catalog, snapshot requests and the snapshot
// reader see the new tables); then, when snapshot names tables, a snapshot
// of them is requested through the stream (the request message comes after
// the ALTER's commit in WAL) and its id returned. Call it after the rules
// for the new tables are in force (capture.Capture swaps them first).
// Safe for concurrent use with Run; one call at a time.
func (s *Source) AddTables(ctx context.Context, a *TableAddition, snapshot []string) (string, error) {
	if len(a.Tables) == 0 {
		return "", nil
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return "", fmt.Errorf("adding %s: %w", strings.Join(a.Names(), ", "), err)
	}
	defer conn.Close(context.Background())
	if err := s.publish(ctx, conn, a); err != nil {
		return "", err
	}
	s.log.Info("capture: tables added to the captured set", "tables", a.Names(), "publication", s.cfg.Publication)
	if len(snapshot) == 0 {
		return "", nil
	}
	if err := s.waitWriters(ctx, conn); err != nil {
		return "", err
	}
	id := NewSnapshotID(time.Now())
	lsn, err := emitMessage(ctx, conn, snapshotMessage{Kind: msgRequest, Slot: s.cfg.Slot, ID: id, Tables: snapshot})
	if err != nil {
		return "", fmt.Errorf("requesting the snapshot of the added tables %s: %w", strings.Join(snapshot, ", "), err)
	}
	s.log.Info("capture: snapshot of the added tables requested", "snapshot", id, "tables", snapshot, "lsn", lsn.String())
	return id, nil
}

// publish adds to the publication the tables of a it still lacks (read
// again: someone may have added them since PrepareTables), then grows the
// captured set. Both happen under tablesMu, which a session's setup holds
// while it compares the publication with the set, so setup never sees the
// publication with a table the set lacks.
func (s *Source) publish(ctx context.Context, conn *pgx.Conn, a *TableAddition) error {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	m, err := comparePublication(ctx, conn, s.cfg.Publication, a.names)
	if err != nil {
		return err
	}
	var missing []string
	if m != nil {
		for _, t := range a.Publish {
			if slices.Contains(m.Missing, t) {
				missing = append(missing, t)
			}
		}
	}
	if len(missing) > 0 {
		sql := alterAdd(s.cfg.Publication, missing)
		s.log.Info("capture: running", "sql", sql)
		if _, err := conn.Exec(ctx, sql); err != nil {
			return &TableAddError{Table: strings.Join(missing, ", "), Found: "adding it to publication " + s.cfg.Publication + " failed: " + err.Error(),
				Fix: "run as the table's owner: " + sql + ";", Err: err}
		}
	}
	s.set.Store(&capturedSet{tables: a.names, addMissing: a.addMissing})
	return nil
}

// writersWait bounds how long AddTables waits for the transactions in
// progress at the ALTER's commit before it requests the snapshot anyway.
const writersWait = 30 * time.Second

// waitWriters waits until every transaction that was in progress when the
// publication got the new tables has ended (the oldest running xid is past
// the xmax read now), at most writersWait. Such a transaction's writes to
// a new table made before the ALTER committed are not published even if it
// commits after (pgoutput decodes each change with the catalog as of its
// place in the WAL), so only the snapshot can carry them: it must read
// after they committed. Past the bound it logs a warning naming the
// transactions and returns nil (the snapshot is requested anyway).
func (s *Source) waitWriters(ctx context.Context, conn *pgx.Conn) error {
	var xmax int64
	if err := conn.QueryRow(ctx, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").Scan(&xmax); err != nil {
		return fmt.Errorf("reading the transactions in progress on %s: %w", s.target(), err)
	}
	deadline := time.Now().Add(writersWait)
	for {
		var xmin int64
		var running []string
		err := conn.QueryRow(ctx, `SELECT pg_snapshot_xmin(s)::text::bigint,
  coalesce((SELECT array_agg(x::text) FROM pg_snapshot_xip(s) x WHERE x::text::bigint < $1), '{}')
FROM pg_current_snapshot() s`, xmax).Scan(&xmin, &running)
		if err != nil {
			return fmt.Errorf("reading the transactions in progress on %s: %w", s.target(), err)
		}
		if xmin >= xmax || len(running) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			s.log.Warn("capture: transactions in progress since the tables were added are still open; requesting their snapshot anyway: their writes to the added tables made before the tables were published reach neither the stream nor (if they commit after their rows' chunk is read) the snapshot",
				"xids", running, "waited", writersWait)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
