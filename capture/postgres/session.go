package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// errDryRunDone ends Run after a dry run's checks and plan.
var errDryRunDone = errors.New("capture: dry run done")

// slotStatement is the replication command that creates the slot.
func (s *Source) slotStatement() string {
	o := s.slotOptions(s.cfg.SnapshotMode != SnapshotNever)
	return fmt.Sprintf("CREATE_REPLICATION_SLOT %s LOGICAL pgoutput %s", pgx.Identifier{s.cfg.Slot}.Sanitize(), o.SnapshotAction)
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
	start, err := s.prepareSlot(ctx, conn, repl, si, exists, sink)
	if err != nil {
		return false, err
	}
	return s.stream(ctx, conn, repl, sink, start)
}

// prepareSlot decides between a fresh snapshot, a resumed one, or plain
// streaming, and returns the LSN to start streaming from.
func (s *Source) prepareSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, si SlotInfo, exists bool, sink Sink) (contract.LSN, error) {
	prog, have, err := s.cfg.SnapshotState.Load(ctx, s.cfg.Slot)
	if err != nil {
		return 0, fmt.Errorf("loading the snapshot state of slot %q: %w", s.cfg.Slot, err)
	}
	if !exists && !(have && prog.Done && s.cfg.SnapshotMode == SnapshotInitialOnly) {
		if err := s.missingSlot(ctx, prog, have); err != nil {
			return 0, err
		}
	}
	switch {
	case have && prog.Done && s.cfg.SnapshotMode == SnapshotInitialOnly:
		if exists {
			if err := pglogrepl.DropReplicationSlot(ctx, repl, s.cfg.Slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
				return 0, fmt.Errorf("dropping replication slot %q after the initial_only snapshot: %w", s.cfg.Slot, err)
			}
		}
		return 0, errSnapshotOnlyDone
	case !exists && s.cfg.SnapshotMode == SnapshotNever:
		s.ddl(s.slotStatement())
		res, err := pglogrepl.CreateReplicationSlot(ctx, repl, s.cfg.Slot, "pgoutput", s.slotOptions(false))
		if err != nil {
			return 0, fmt.Errorf("creating replication slot %q: %w", s.cfg.Slot, err)
		}
		point, err := contract.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return 0, &ProtocolError{Err: err}
		}
		s.log.Info("capture: created replication slot without snapshot", "slot", s.cfg.Slot, "consistent_point", point.String())
		return point, nil
	case !exists:
		if have && !prog.Done {
			s.log.Warn("capture: restarting the initial snapshot: its slot no longer exists", "slot", s.cfg.Slot, "rows_done_before", prog.Rows)
		}
		return s.freshSnapshot(ctx, conn, repl, sink)
	case have && prog.Done:
		return s.resumePoint(si), nil
	case have && prog.Point != si.Confirmed:
		// The slot moved since the snapshot started: it is not the slot the
		// snapshot belongs to, or someone consumed it.
		s.log.Warn("capture: restarting the initial snapshot: the slot's confirmed position is not the snapshot's",
			"slot", s.cfg.Slot, "snapshot_point", prog.Point.String(), "slot_confirmed", si.Confirmed.String())
	case have:
		point, resumed, reason, err := s.resumeSnapshot(ctx, conn, repl, sink, prog)
		if err != nil || resumed {
			return point, err
		}
		s.log.Warn("capture: restarting the initial snapshot: resuming would not be consistent", "slot", s.cfg.Slot, "reason", reason)
	case s.cfg.SnapshotMode == SnapshotNever:
		return s.resumePoint(si), nil
	default:
		// A slot without snapshot state: capture cannot know whether its
		// snapshot completed, so it does not trust it (nothing lost over
		// nothing doubled). Use SnapshotNever to stream an existing slot.
		s.log.Warn("capture: restarting the initial snapshot: the slot exists but no snapshot state was saved for it", "slot", s.cfg.Slot)
	}
	if err := pglogrepl.DropReplicationSlot(ctx, repl, s.cfg.Slot, pglogrepl.DropReplicationSlotOptions{Wait: true}); err != nil {
		return 0, fmt.Errorf("dropping replication slot %q to restart the snapshot: %w", s.cfg.Slot, err)
	}
	return s.freshSnapshot(ctx, conn, repl, sink)
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
func (s *Source) missingSlot(ctx context.Context, prog SnapshotProgress, have bool) error {
	var evidence []string
	if s.confirmed > 0 {
		evidence = append(evidence, "this process confirmed up to "+s.confirmed.String())
	}
	if have && prog.Done {
		evidence = append(evidence, fmt.Sprintf("its initial snapshot completed at %s (snapshot state)", prog.Point))
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
