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
	if err := s.refuse([]Finding{CheckTransport(transportOf(conn, s.sslMode))}); err != nil {
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
	tables := make([]Table, 0, len(s.cfg.Tables))
	var findings []Finding
	for _, name := range s.cfg.Tables {
		t, err := readTable(ctx, conn, name)
		if err != nil {
			return si, false, err
		}
		tables = append(tables, t)
		findings = append(findings, CheckTable(t, srv))
	}
	for _, t := range tables {
		if f, ok := CheckGenerated(t, srv); ok {
			findings = append(findings, f)
		}
	}
	if err := s.refuse(findings); err != nil {
		return si, false, err
	}
	findings = findings[:0]
	for _, t := range tables {
		var readers []string
		if slices.Contains(s.cfg.NeedOldValues, t.Name) {
			readers = append(readers, NeedOldValuesReason)
		}
		findings = append(findings, CheckReplicaIdentity(t, readers))
	}
	if err := s.refuse(findings); err != nil {
		return si, false, err
	}
	m, err := comparePublication(ctx, conn, s.cfg.Publication, s.cfg.Tables)
	if err != nil {
		return si, false, err
	}
	plan := CheckPublication(PublicationCheck{Publication: s.cfg.Publication, Tables: s.cfg.Tables,
		AddMissingTables: s.cfg.AddMissingTables, Server: srv, Existing: tables}, m)
	if err := s.refuse([]Finding{plan.Finding}); err != nil {
		return si, false, err
	}
	if err := s.ensurePublication(ctx, conn, plan, tables); err != nil {
		return si, false, err
	}
	return si, exists, s.refuse(CheckSlot(si, exists, srv.Database, 0))
}
