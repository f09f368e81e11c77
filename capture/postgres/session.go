package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// errDryRunDone ends Run after a dry run's checks and plan.
var errDryRunDone = errors.New("capture: dry run done")

// slotStatement is the replication command that creates the slot. No
// snapshot is exported: snapshots read in chunks while streaming.
func (s *Source) slotStatement() string {
	o := s.slotOptions(false)
	return fmt.Sprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput %s", pgx.Identifier{s.cfg.Slot}.Sanitize(), o.SnapshotAction)
}

// createSlot creates the slot and returns its consistent point: every
// transaction committed after it is in the slot's stream.
func (s *Source) createSlot(ctx context.Context, repl *pgconn.PgConn) (contract.LSN, error) {
	s.ddl(s.slotStatement())
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, s.cfg.Slot, "pgoutput", s.slotOptions(false))
	if err != nil {
		return 0, fmt.Errorf("creating replication slot %q: %w", s.cfg.Slot, err)
	}
	point, err := contract.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, &ProtocolError{Err: err}
	}
	return point, nil
}

// errSnapshotOnlyDone ends Run after an initial_only snapshot.
var errSnapshotOnlyDone = errors.New("capture: initial_only snapshot complete")

// session is one connection lifetime: connect, check, prepare the slot
// (snapshot if needed), stream. It reports whether it reached streaming.
func (s *Source) session(ctx context.Context, sink Sink) (bool, error) {
	if g := s.cfg.Guard; g != nil {
		if err := g(ctx); err != nil {
			return false, &GuardError{Action: "connect", Err: err}
		}
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	si, exists, err := s.setup(ctx, conn)
	if err != nil {
		return false, err
	}
	if s.cfg.DryRun {
		if !exists {
			s.ddl(s.slotStatement())
		}
		if s.needsFailover(si, exists) {
			s.ddl(s.failoverStatement())
		}
		return false, errDryRunDone
	}
	// The replication connection comes after the checks, so a missing
	// REPLICATION attribute is reported as such, not as a refused login.
	repl, err := s.connectReplication(ctx)
	if err != nil {
		return false, err
	}
	defer repl.Close(context.Background())
	if err := s.enableFailover(ctx, repl, si, exists); err != nil {
		return false, err
	}
	start, err := s.prepareSlot(ctx, repl, si, exists)
	if err != nil {
		return false, err
	}
	// The snapshot reader runs beside the stream, for this session only.
	rctx, stopReader := context.WithCancel(ctx)
	readerDone := make(chan struct{})
	go func() { defer close(readerDone); s.runSnapshots(rctx) }()
	defer func() { stopReader(); <-readerDone }()
	reached, err := s.stream(ctx, conn, repl, sink, start)
	if errors.Is(err, errSnapshotOnlyDone) {
		stopReader()
		<-readerDone
		return reached, s.dropSlotAfterSnapshot(ctx, conn, repl)
	}
	return reached, err
}

// prepareSlot creates the slot if needed, queues the initial snapshot
// when one is due, and returns the LSN to start streaming from. Snapshots
// are read while streaming (runSnapshots), never here.
func (s *Source) prepareSlot(ctx context.Context, repl *pgconn.PgConn, si SlotInfo, exists bool) (contract.LSN, error) {
	book, err := s.snap.load(ctx)
	if err != nil {
		return 0, err
	}
	init := book.Initial()
	if !exists && !(init != nil && init.Status == SnapshotDone && s.cfg.SnapshotMode == SnapshotInitialOnly) {
		if err := s.missingSlot(ctx, init); err != nil {
			return 0, err
		}
	}
	switch {
	case init != nil && init.Status == SnapshotDone && s.cfg.SnapshotMode == SnapshotInitialOnly:
		if exists {
			if err := pglogrepl.DropReplicationSlot(ctx, repl, s.cfg.Slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
				return 0, fmt.Errorf("dropping replication slot %q after the initial_only snapshot: %w", s.cfg.Slot, err)
			}
		}
		return 0, errSnapshotOnlyDone
	case !exists:
		point, err := s.createSlot(ctx, repl)
		if err != nil {
			return 0, err
		}
		s.confirmed = max(s.confirmed, point)
		if s.cfg.SnapshotMode == SnapshotNever {
			s.log.Info("capture: created replication slot without snapshot", "slot", s.cfg.Slot, "consistent_point", point.String())
			return point, nil
		}
		if init != nil && init.Active() {
			s.log.Warn("capture: restarting the initial snapshot: its slot no longer exists", "slot", s.cfg.Slot, "rows_done_before", init.Rows)
		}
		id, err := s.snap.startInitial(ctx, point)
		if err != nil {
			return 0, err
		}
		s.log.Info("capture: created replication slot; the initial snapshot is read while streaming", "slot", s.cfg.Slot, "consistent_point", point.String(), "snapshot", id)
		return point, nil
	case init != nil || s.cfg.SnapshotMode == SnapshotNever:
		return s.resumePoint(si), nil
	default:
		// A slot without a saved initial snapshot (the state was lost, or
		// the slot was created by someone else): capture cannot know
		// whether its rows were read, so it reads them (a new snapshot id)
		// while streaming from where the slot is. Nothing is lost; the rows
		// may be in the store twice, under two snapshot ids. Use
		// snapshot.mode never to stream an existing slot as is.
		point := s.resumePoint(si)
		id, err := s.snap.startInitial(ctx, point)
		if err != nil {
			return 0, err
		}
		s.log.Warn("capture: the slot exists but no snapshot state was saved for it: reading the tables while streaming", "slot", s.cfg.Slot, "snapshot", id)
		return point, nil
	}
}

// dropSlotAfterSnapshot drops the slot once the initial_only snapshot is
// complete: the stream is ended first (the replication connection closed),
// then the slot is dropped from conn once its walsender is gone.
func (s *Source) dropSlotAfterSnapshot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn) error {
	_ = repl.Close(context.Background())
	f, err := readFootprint(ctx, conn, s.cfg.Slot, s.cfg.Publication)
	if err != nil {
		return err
	}
	if f, err = waitInactive(ctx, conn, f, time.Minute); err != nil {
		return err
	}
	if f.SlotExists {
		stmt := "SELECT pg_drop_replication_slot(" + quoteLiteral(s.cfg.Slot) + ")"
		s.ddl(stmt)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("dropping replication slot %q after the initial_only snapshot: %w", s.cfg.Slot, err)
		}
	}
	return errSnapshotOnlyDone
}

// resumePoint is where streaming restarts: the position this Source last
// confirmed, or the slot's confirmed_flush_lsn if that is later (first
// session of a process).
func (s *Source) resumePoint(si SlotInfo) contract.LSN {
	return max(s.confirmed, si.Confirmed)
}

// missingSlot decides on a slot that does not exist: nil when capture never
// streamed through it (or OnMissingSlot allows a new one), else a
// *SlotMissingError. Both are logged at ERROR when there was one.
func (s *Source) missingSlot(ctx context.Context, init *Snapshot) error {
	var evidence []string
	if s.confirmed > 0 {
		evidence = append(evidence, "this process confirmed up to "+s.confirmed.String())
	}
	if init != nil && init.Status == SnapshotDone {
		evidence = append(evidence, fmt.Sprintf("its initial snapshot %s completed (snapshot state)", init.ID))
	}
	if s.cfg.History != nil {
		more, err := s.cfg.History(ctx)
		if err != nil {
			return fmt.Errorf("replication slot %q does not exist; reading whether capture streamed through it (a gap in history): %w", s.cfg.Slot, err)
		}
		evidence = append(evidence, more...)
	}
	f, ok := CheckSlotGap(s.cfg.Slot, evidence, s.cfg.OnMissingSlot)
	if !ok {
		return nil
	}
	if f.Err != nil {
		s.log.Error("capture: stopping: "+f.Err.Error(), "slot", s.cfg.Slot)
		return f.Err
	}
	s.log.Error("capture: replication slot "+s.cfg.Slot+" was dropped under capture; "+strings.TrimPrefix(f.Found, "absent, but "), "slot", s.cfg.Slot, "snapshot_mode", string(s.cfg.SnapshotMode))
	return nil
}
