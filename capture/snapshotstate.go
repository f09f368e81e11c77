package capture

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// StoreSnapshotState is a durable [postgres.SnapshotState] in KurrentDB:
// each Save appends the slot's snapshots (contract.SnapshotState) to the
// stream "chronicler-snapshot-<slot>" and Load reads that stream's last
// event, so snapshots resume after a crash, a restart or an HA takeover
// as capture/postgres's doc describes. Saves of store outages are retried
// with backoff until ctx ends (the snapshot waits). Safe for concurrent use.
type StoreSnapshotState struct {
	db      *store.Client
	log     *slog.Logger
	limited atomic.Bool // $maxCount set on the stream
}

// snapshotMaxCount is the $maxCount set on a snapshot stream at its first
// save by a process (only its last event counts).
const snapshotMaxCount = 1000

// NewStoreSnapshotState returns a StoreSnapshotState on db.
func NewStoreSnapshotState(db *store.Client, log *slog.Logger) *StoreSnapshotState {
	if log == nil {
		log = slog.Default()
	}
	return &StoreSnapshotState{db: db, log: log}
}

// ReadSnapshots reads the last saved snapshots of slot from db: ok false
// when none were saved. `chronicler status` reads them with it.
func ReadSnapshots(ctx context.Context, db *store.Client, slot string) (postgres.Snapshots, bool, error) {
	stream := contract.SnapshotStream(slot)
	ev, err := db.ReadLast(ctx, stream)
	if err != nil {
		return postgres.Snapshots{}, false, fmt.Errorf("reading snapshot progress from %s: %w", stream, err)
	}
	if ev == nil {
		return postgres.Snapshots{}, false, nil
	}
	c, err := contract.DecodeSnapshotState(ev.Data)
	if err == nil {
		var b postgres.Snapshots
		if b, err = postgres.SnapshotsFromContract(c); err == nil {
			return b, true, nil
		}
	}
	return postgres.Snapshots{}, false, fmt.Errorf("snapshot progress in %s (revision %d) is not valid: %w; delete the stream to forget every snapshot (the initial one is then read again)", stream, ev.Revision, err)
}

// Load implements postgres.SnapshotState.
func (s *StoreSnapshotState) Load(ctx context.Context, slot string) (postgres.Snapshots, bool, error) {
	return ReadSnapshots(ctx, s.db, slot)
}

// Save implements postgres.SnapshotState.
func (s *StoreSnapshotState) Save(ctx context.Context, b postgres.Snapshots) error {
	stream := contract.SnapshotStream(b.Slot)
	data := contract.EncodeSnapshotState(b.Contract())
	var backoff retry.Backoff
	for {
		_, err := s.db.AppendOne(ctx, stream, store.Any(), contract.SnapshotProgressType, data)
		if err == nil {
			if s.limited.CompareAndSwap(false, true) {
				if err := s.db.SetMaxCount(ctx, stream, snapshotMaxCount); err != nil {
					s.log.Warn("setting $maxCount on the snapshot stream failed; it keeps every save", "stream", stream, "err", err)
				}
			}
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
