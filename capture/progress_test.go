package capture_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestSlotHistory: what the store shows of a slot is its last progress
// marker and, when asked, its completed initial snapshots (not one still
// running, not another snapshot); a slot with neither has no history; and
// a snapshot stream whose last event does not decode is an error, not an
// empty history (which would say capture never streamed through the slot).
func TestSlotHistory(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	if got, err := capture.SlotHistory(ctx, db.store, "fresh", true); err != nil || len(got) != 0 {
		t.Fatalf("SlotHistory of a fresh slot = %q, %v; want nothing", got, err)
	}

	for _, lsn := range []contract.LSN{0x16B3700, 0x16B3748} {
		data := contract.EncodeProgress(contract.Progress{Slot: "s", DurableLSN: lsn})
		if _, err := db.store.AppendOne(ctx, contract.ProgressStream("s"), store.Any(), contract.ProgressType, data); err != nil {
			t.Fatal(err)
		}
	}
	state := capture.NewStoreSnapshotState(db.store, nil)
	if err := state.Save(ctx, postgres.Snapshots{Slot: "s", List: []postgres.Snapshot{
		{ID: "initial-0/1", Initial: true, Tables: []string{"public.a"}, Status: postgres.SnapshotDone, Floor: 1},
		{ID: "initial-0/2", Initial: true, Tables: []string{"public.a"}, Status: postgres.SnapshotRunning, Floor: 2},
		{ID: "snap-1", Tables: []string{"public.a"}, Status: postgres.SnapshotDone, Floor: 3},
	}}); err != nil {
		t.Fatal(err)
	}
	progress := "the store holds its progress up to 0/16B3748 in " + contract.ProgressStream("s")
	for _, c := range []struct {
		snapshot bool
		want     []string
	}{
		{false, []string{progress}},
		{true, []string{progress, "its initial snapshot initial-0/1 completed (" + contract.SnapshotStream("s") + ")"}},
	} {
		got, err := capture.SlotHistory(ctx, db.store, "s", c.snapshot)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("SlotHistory(snapshot %v) = %q, %v; want %q", c.snapshot, got, err, c.want)
		}
	}

	// The snapshot stream's last event is not a snapshot state.
	if _, err := db.store.AppendOne(ctx, contract.SnapshotStream("s"), store.Any(), contract.SnapshotProgressType, []byte(`{"slot":"s","snapshots":[{"id":"x","state":"half"}]}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := capture.SlotHistory(ctx, db.store, "s", true); err == nil {
		t.Errorf("SlotHistory with an unreadable snapshot state = %q; want an error", got)
	}
}
