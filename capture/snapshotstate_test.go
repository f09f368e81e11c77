package capture_test

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/postgres"
)

// TestStoreSnapshotStateSurvivesANewInstance: snapshots saved by one
// instance are loaded by another (a restarted process), the last save wins,
// and a slot without a save reports ok=false.
func TestStoreSnapshotStateSurvivesANewInstance(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	s1 := capture.NewStoreSnapshotState(db.store, slog.New(slog.DiscardHandler))
	if _, ok, err := s1.Load(ctx, "s"); err != nil || ok {
		t.Fatalf("Load of a fresh slot: ok=%v err=%v, want ok=false", ok, err)
	}
	at := time.Date(2026, 12, 3, 15, 4, 5, 0, time.UTC)
	initial := postgres.Snapshot{ID: "initial-16/B374D848", Initial: true, Tables: []string{"public.a", "public.b"},
		Status: postgres.SnapshotRunning, Table: 0, LastKey: []string{"10", "x"}, Rows: 10, Estimated: 100,
		Floor: 0x16B374D848, RequestedAt: at, StartedAt: at, UpdatedAt: at}
	first := postgres.Snapshots{Slot: "s", List: []postgres.Snapshot{initial}}
	initial.Table, initial.LastKey, initial.Rows, initial.Floor = 1, []string{"3"}, 40, 0x16B374E000
	requested := postgres.Snapshot{ID: "snap-1", Tables: []string{"public.b"}, Where: "id > 3", Status: postgres.SnapshotQueued,
		Floor: 0x16B374F000, RequestedAt: at}
	last := postgres.Snapshots{Slot: "s", List: []postgres.Snapshot{initial, requested}}
	for _, b := range []postgres.Snapshots{first, last} {
		if err := s1.Save(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	other := postgres.Snapshots{Slot: "other", List: []postgres.Snapshot{{ID: "initial-0/1", Initial: true, Tables: []string{"public.a"}, Status: postgres.SnapshotDone, Floor: 1}}}
	if err := s1.Save(ctx, other); err != nil {
		t.Fatal(err)
	}
	s2 := capture.NewStoreSnapshotState(db.store, nil)
	got, ok, err := s2.Load(ctx, "s")
	if err != nil || !ok || !reflect.DeepEqual(got, last) {
		t.Fatalf("Load: %+v ok=%v err=%v, want %+v", got, ok, err, last)
	}
	got, ok, err = capture.ReadSnapshots(ctx, db.store, "other")
	if err != nil || !ok || !reflect.DeepEqual(got, other) {
		t.Fatalf("ReadSnapshots(other): %+v ok=%v err=%v, want %+v", got, ok, err, other)
	}
}
