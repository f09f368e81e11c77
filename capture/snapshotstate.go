package capture

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// StoreSnapshotState is a durable [postgres.SnapshotState] in KurrentDB:
// each Save appends the progress to the stream "chronicler-snapshot-<slot>"
// and Load reads that stream's last event, so a crash during the initial
// snapshot resumes as capture/postgres's doc describes. Saves of store
// outages are retried with backoff until ctx ends (the snapshot waits).
// Safe for concurrent use.
type StoreSnapshotState struct {
	db  *store.Client
	log *slog.Logger
}

// NewStoreSnapshotState returns a StoreSnapshotState on db.
func NewStoreSnapshotState(db *store.Client, log *slog.Logger) *StoreSnapshotState {
	if log == nil {
		log = slog.Default()
	}
	return &StoreSnapshotState{db: db, log: log}
}

// Load implements postgres.SnapshotState.
func (s *StoreSnapshotState) Load(ctx context.Context, slot string) (postgres.SnapshotProgress, bool, error) {
	stream := contract.SnapshotStream(slot)
	ev, err := s.db.ReadLast(ctx, stream)
	if err != nil {
		return postgres.SnapshotProgress{}, false, fmt.Errorf("reading snapshot progress from %s: %w", stream, err)
	}
	if ev == nil {
		return postgres.SnapshotProgress{}, false, nil
	}
	j, point, err := contract.DecodeSnapshotState(ev.Data)
	if err != nil {
		return postgres.SnapshotProgress{}, false, fmt.Errorf("snapshot progress in %s (revision %d) is not valid: %w; delete the stream to restart the snapshot", stream, ev.Revision, err)
	}
	return postgres.SnapshotProgress{Slot: j.Slot, Point: point, Done: j.Done, Table: j.Table, Tables: j.Tables, LastKey: j.LastKey, Rows: j.Rows}, true, nil
}

// Save implements postgres.SnapshotState.
func (s *StoreSnapshotState) Save(ctx context.Context, p postgres.SnapshotProgress) error {
	stream := contract.SnapshotStream(p.Slot)
	data := contract.EncodeSnapshotState(contract.SnapshotState{Slot: p.Slot, Point: p.Point.String(), Done: p.Done, Table: p.Table, Tables: p.Tables, LastKey: p.LastKey, Rows: p.Rows})
	var backoff retry.Backoff
	for {
		_, err := s.db.AppendOne(ctx, stream, store.Any(), contract.SnapshotProgressType, data)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || store.IsStreamDeleted(err) {
			return fmt.Errorf("saving snapshot progress to %s: %w", stream, err)
		}
		s.log.Warn("saving snapshot progress failed; retrying", "stream", stream, "err", err, "backoff", backoff.Next())
		if !backoff.Wait(ctx) {
			return fmt.Errorf("saving snapshot progress to %s: %w", stream, ctx.Err())
		}
	}
}
