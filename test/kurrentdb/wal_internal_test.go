package kurrentdb

import (
	"context"
	"errors"
	"log/slog"
	"testing"
)

func openTestStore(t *testing.T, hook func() bool) (*store, *wal) {
	t.Helper()
	st := newStore(slog.New(slog.DiscardHandler), 0)
	w, err := openWAL(t.TempDir(), st)
	if err != nil {
		t.Fatal(err)
	}
	w.beforeSync = hook
	st.wal = w
	go w.run()
	t.Cleanup(func() { st.close(); _ = w.close(); st.release() })
	return st, w
}

func oneEvent() []proposed {
	return []proposed{{ID: newID(), Type: "T", ContentType: contentTypeBinary, Data: []byte("x")}}
}

// TestGroupCommit: while the writer is inside an fsync (held by the hook),
// appends still reserve (no lock is held across the sync), readers see none
// of them, and the next sync covers all of them at once.
func TestGroupCommit(t *testing.T) {
	inSync, release := make(chan struct{}), make(chan struct{})
	first := true
	st, w := openTestStore(t, func() bool {
		if first {
			first = false
			close(inSync)
			<-release
		}
		return true
	})
	res0, wait0, err := st.reserveAppend("g-0", Expected{}, oneEvent())
	if err != nil {
		t.Fatal(err)
	}
	<-inSync // the writer is now "syncing" the first frame
	const n = 10
	var last uint64
	for i := 1; i <= n; i++ {
		_, wait, err := st.reserveAppend("g-"+string(rune('0'+i)), Expected{}, oneEvent())
		if err != nil {
			t.Fatal(err)
		}
		last = wait
	}
	if recs, _, _ := st.readAll(0, true, 100); len(recs) != 0 {
		t.Fatalf("%d records visible before their fsync", len(recs))
	}
	close(release)
	if err := st.waitVisible(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := st.readAll(0, true, 100); len(recs) != n+1 || recs[0].Position != wait0 || res0.Position != wait0 {
		t.Fatalf("visible after sync: %d records, want %d", len(recs), n+1)
	}
	st.close()
	_ = w.close()
	if w.syncs != 2 {
		t.Fatalf("%d fsyncs for %d appends, want 2 (the held one, then one for the 10 queued behind it)", w.syncs, n+1)
	}
}

// TestSyncFailureStopsWrites: after a failed sync the waiting append gets a
// *StorageError, nothing of it is visible, and later appends are refused.
func TestSyncFailureStopsWrites(t *testing.T) {
	st, _ := openTestStore(t, func() bool { return false })
	_, err := st.append(context.Background(), "f", Expected{}, oneEvent())
	var se *StorageError
	if !errors.As(err, &se) {
		t.Fatalf("append: err = %v, want *StorageError", err)
	}
	if recs, _, _ := st.readAll(0, true, 10); len(recs) != 0 {
		t.Fatalf("%d records visible after a failed sync", len(recs))
	}
	if _, err := st.append(context.Background(), "f", Expected{}, oneEvent()); !errors.As(err, &se) {
		t.Fatalf("append after failure: err = %v, want *StorageError", err)
	}
}
