package capture_test

import (
	"context"
	"log/slog"
	"reflect"
	"testing"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/postgres"
)

// TestStoreSnapshotStateSurvivesANewInstance: progress saved by one
// instance is loaded by another (a restarted process), the last save wins,
// and a slot without progress reports ok=false.
func TestStoreSnapshotStateSurvivesANewInstance(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	s1 := capture.NewStoreSnapshotState(db.store, slog.New(slog.DiscardHandler))
	if _, ok, err := s1.Load(ctx, "s"); err != nil || ok {
		t.Fatalf("Load of a fresh slot: ok=%v err=%v, want ok=false", ok, err)
	}
	first := postgres.SnapshotProgress{Slot: "s", Point: 0x16B374D848, Table: 0, Tables: []string{"public.a", "public.b"}, LastKey: []string{"10", "x"}, Rows: 10}
	last := postgres.SnapshotProgress{Slot: "s", Point: 0x16B374D848, Table: 1, Tables: []string{"public.a", "public.b"}, LastKey: []string{"3"}, Rows: 40}
	for _, p := range []postgres.SnapshotProgress{first, last} {
		if err := s1.Save(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Save(ctx, postgres.SnapshotProgress{Slot: "other", Done: true, Point: 1}); err != nil {
		t.Fatal(err)
	}
	s2 := capture.NewStoreSnapshotState(db.store, nil)
	got, ok, err := s2.Load(ctx, "s")
	if err != nil || !ok || !reflect.DeepEqual(got, last) {
		t.Fatalf("Load: %+v ok=%v err=%v, want %+v", got, ok, err, last)
	}
}
