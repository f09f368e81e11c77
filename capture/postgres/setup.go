package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// setup runs the checks `chronicler check` prints, in its order, on conn:
// the server, the tables, their replica identity, the publication, the
// slot. It refuses (the typed errors of the findings, joined) what would
// fail or harm the database, logs the warnings, creates or widens the
// publication as planned, and returns the slot as read.
func (s *Source) setup(ctx context.Context, conn *pgx.Conn) (SlotInfo, bool, error) {
	s.warnings = nil
	mode, _ := sslModeOf(s.cfg.URL) // the mode connect asked for: the same for every connection
	if err := s.refuse([]Finding{CheckTransport(transportOf(conn, mode))}); err != nil {
		return SlotInfo{}, false, err
	}
	srv, err := readServer(ctx, conn)
	if err != nil {
		return SlotInfo{}, false, fmt.Errorf("checking %s: %w", s.target(), err)
	}
	si, exists, err := readSlot(ctx, conn, s.cfg.Slot)
	if err != nil {
		return si, false, fmt.Errorf("checking %s: %w", s.target(), err)
	}
	if err := s.refuse(CheckServer(srv, si, exists)); err != nil {
		return si, false, err
	}
	if err := s.checkFailover(ctx, conn, srv, si, exists); err != nil {
		return si, false, err
	}
	if err := s.setupTables(ctx, conn, srv); err != nil {
		return si, false, err
	}
	return si, exists, s.refuse(CheckSlot(si, exists, srv.Database, 0))
}

// setupTables checks the captured tables and their replica identities,
// then the publication, and creates or widens it as planned. It holds
// tablesMu, so a reload adding tables (AddTables) waits for it.
func (s *Source) setupTables(ctx context.Context, conn *pgx.Conn, srv Server) error {
	s.tablesMu.Lock()
	defer s.tablesMu.Unlock()
	set := s.captured()
	genStored, err := publishesGenerated(ctx, conn, s.cfg.Publication)
	if err != nil {
		return err
	}
	s.genStored.Store(genStored)
	tables := make([]Table, 0, len(set.tables))
	var findings []Finding
	for _, name := range set.tables {
		t, err := readTable(ctx, conn, name, genStored)
		if err != nil {
			return err
		}
		tables = append(tables, t)
		findings = append(findings, CheckTable(t, srv))
	}
	for _, t := range tables {
		if f, ok := CheckGenerated(t, srv, s.cfg.Publication); ok {
			findings = append(findings, f)
		}
	}
	if err := s.refuse(findings); err != nil {
		return err
	}
	findings = findings[:0]
	for _, t := range tables {
		findings = append(findings, s.checkIdentity(t))
	}
	if err := s.refuse(findings); err != nil {
		return err
	}
	m, err := comparePublication(ctx, conn, s.cfg.Publication, set.tables)
	if err != nil {
		return err
	}
	plan := CheckPublication(PublicationCheck{Publication: s.cfg.Publication, Tables: set.tables,
		AddMissingTables: set.addMissing, Server: srv, Existing: tables}, m)
	if err := s.refuse([]Finding{plan.Finding}); err != nil {
		return err
	}
	if err := s.ensurePublication(ctx, conn, plan, set.tables, tables, srv); err != nil {
		return err
	}
	return nil
}

// checkIdentity is CheckReplicaIdentity of t, with need_old_values as the
// reader of its old values when it lists t.
func (s *Source) checkIdentity(t Table) Finding {
	var readers []string
	if slices.Contains(s.cfg.NeedOldValues, t.Name) {
		readers = append(readers, NeedOldValuesReason)
	}
	return CheckReplicaIdentity(t, readers)
}
