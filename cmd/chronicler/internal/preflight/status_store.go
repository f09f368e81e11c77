package preflight

import (
	"context"
	"errors"
	"fmt"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// readStore reads the last progress marker, the end of $all, the capture
// dead-letter count and the snapshots, and keeps the client (s.db) when
// the store answered.
func (s *statusReader) readStore(ctx context.Context, progressStream string) {
	ss := &StoreStatus{ProgressStream: progressStream}
	s.rep.Store = ss
	db, target, err := openStore(s.cfg)
	if err != nil {
		s.fail("store", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var (
		marker, end, dl, snaps *store.Recorded
	)
	snapStream := contract.SnapshotStream(s.cfg.Postgres.Slot)
	err = store.Bounded(ctx, func(ctx context.Context) error {
		var err error
		if marker, err = db.ReadLast(ctx, progressStream); err != nil {
			return fmt.Errorf("reading %s: %w", progressStream, err)
		}
		if end, err = db.ReadLastAll(ctx); err != nil {
			return fmt.Errorf("reading $all backwards: %w", err)
		}
		if dl, err = db.ReadLast(ctx, s.rep.DeadLetters.CaptureStream); err != nil {
			return fmt.Errorf("reading %s: %w", s.rep.DeadLetters.CaptureStream, err)
		}
		if snaps, err = db.ReadLast(ctx, snapStream); err != nil {
			return fmt.Errorf("reading %s: %w", snapStream, err)
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNoAnswer) { // else the call may still be in the client (store.ErrNoAnswer)
			db.Close()
		}
		s.fail("store", fmt.Errorf("%s: %w", target, err))
		return
	}
	s.db = db // the publisher lag reads through it; ReadStatus closes it
	if marker != nil {
		if p, err := contract.DecodeProgress(marker.Data); err != nil {
			s.fail("store", fmt.Errorf("event %d in %s: %w", marker.Revision, progressStream, err))
		} else {
			ss.DurableLSN = p.DurableLSN.String()
			at := marker.Created.UTC()
			ss.ProgressWritten, s.marker = &at, &at
		}
	}
	if end != nil {
		ss.End = &Position{Commit: end.Pos.Commit, Prepare: end.Pos.Prepare}
	}
	n := int64(0)
	if dl != nil {
		n = int64(dl.Revision) + 1
	}
	s.rep.DeadLetters.Capture = &n
	ss.Snapshots = []SnapshotStatus{}
	if snaps != nil {
		st, err := contract.DecodeSnapshotState(snaps.Data)
		if err != nil {
			s.fail("store", fmt.Errorf("event %d in %s: %w", snaps.Revision, snapStream, err))
			return
		}
		for _, e := range st.Snapshots {
			ss.Snapshots = append(ss.Snapshots, snapshotStatus(e))
		}
	}
}

// snapshotStatus is a saved snapshot as status shows it.
func snapshotStatus(e contract.SnapshotEntry) SnapshotStatus {
	st := SnapshotStatus{ID: e.ID, Initial: e.Initial, Tables: e.Tables, Where: e.Where, State: e.State,
		RowsDone: e.Rows, RowsEstimated: e.Estimated, RowsPerSecond: e.RowsPerSecond, UpdatedAt: e.UpdatedAt, Error: e.Error}
	if e.Table < len(e.Tables) && (e.State == "running" || e.State == "queued") {
		st.Table = e.Tables[e.Table]
	}
	if e.State == "running" && e.RowsPerSecond > 0 && e.Estimated > e.Rows {
		eta := float64(e.Estimated-e.Rows) / e.RowsPerSecond
		st.ETASeconds = &eta
	}
	return st
}
