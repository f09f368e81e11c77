package preflight

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// readSlot reads the slot from pg_replication_slots and its walsender's
// lag from pg_stat_replication.
func (s *statusReader) readSlot(ctx context.Context) {
	ss := &SlotStatus{Name: s.cfg.Postgres.Slot, LagSource: LagUnknownTime}
	s.rep.Slot = ss
	ccfg, err := pgx.ParseConfig(s.cfg.PostgresURL())
	if err != nil {
		s.fail("slot", fmt.Errorf("postgres.url is not a valid connection string: %w", err))
		return
	}
	pc := &ccfg.Config
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, ccfg)
	if err != nil {
		s.fail("slot", fmt.Errorf("connecting to %s: %w", pgTarget(pc), connErr(err)))
		return
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&ss.CurrentLSN); err != nil {
		s.fail("slot", fmt.Errorf("reading pg_current_wal_lsn() on %s: %w", pgTarget(pc), err))
		return
	}
	var (
		walStatus, confirmed *string
		flushLag             *float64
	)
	err = conn.QueryRow(ctx, `
SELECT s.active, s.active_pid, s.wal_status, s.confirmed_flush_lsn::text,
       pg_wal_lsn_diff($2::pg_lsn, s.confirmed_flush_lsn)::bigint,
       extract(epoch FROM r.flush_lag)::float8
FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name = $1`, ss.Name, ss.CurrentLSN).Scan(&ss.Active, &ss.ActivePID, &walStatus, &confirmed, &ss.LagBytes, &flushLag)
	if err == pgx.ErrNoRows {
		return // exists false: capture never ran (or the slot was dropped)
	}
	if err != nil {
		s.fail("slot", fmt.Errorf("reading slot %s on %s: %w", ss.Name, pgTarget(pc), err))
		return
	}
	ss.Exists = true
	if walStatus != nil {
		ss.WALStatus = *walStatus
	}
	if confirmed != nil {
		ss.ConfirmedLSN = *confirmed
	}
	switch {
	case ss.LagBytes != nil && *ss.LagBytes <= 0:
		zero := 0.0
		ss.LagSeconds, ss.LagSource = &zero, LagCaughtUp
	case ss.Active && flushLag != nil:
		ss.LagSeconds, ss.LagSource = flushLag, LagFlushLag
	case s.marker != nil:
		age := s.opts.Now().Sub(*s.marker).Seconds()
		ss.LagSeconds, ss.LagSource = &age, LagMarkerAge
	}
}
