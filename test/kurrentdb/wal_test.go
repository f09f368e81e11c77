package kurrentdb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/google/uuid"
)

// durableWrite starts a durable server on dir, appends a 2-event batch and
// then a 1-event batch to stream, closes it, and returns the ids and the
// position of the last event (its frame starts 8 bytes before it).
func durableWrite(t *testing.T, dir string) (first []uuid.UUID, last uuid.UUID, lastPos uint64) {
	t.Helper()
	srv, err := kurrentdb.Start(kurrentdb.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	db := kurrentdbtest.Client(t, srv.URL())
	a, b, c := esdbEvent(), esdbEvent(), esdbEvent()
	if _, err := db.AppendToStream(context.Background(), "torn", esdb.AppendToStreamOptions{}, a, b); err != nil {
		t.Fatal(err)
	}
	res, err := db.AppendToStream(context.Background(), "torn", esdb.AppendToStreamOptions{}, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	return []uuid.UUID{a.EventID, b.EventID}, c.EventID, res.CommitPosition
}

func esdbEvent() esdb.EventData {
	id := uuid.New()
	return esdb.EventData{EventID: id, EventType: "Torn", ContentType: esdb.ContentTypeBinary, Data: id[:]}
}

// TestTornTailIsCut: after each kind of damage to the last frame (half
// written, garbage appended, a flipped byte, a huge length) the server cuts
// the log back to the last whole frame, serves exactly the events before it,
// and appends after it with increasing positions; a second restart agrees.
func TestTornTailIsCut(t *testing.T) {
	damages := map[string]func(data []byte, frame int) []byte{
		"half of the last frame":   func(d []byte, f int) []byte { return d[:f+(len(d)-f)/2] },
		"only its length header":   func(d []byte, f int) []byte { return d[:f+3] },
		"flipped byte in payload":  func(d []byte, f int) []byte { d[len(d)-2] ^= 0xff; return d },
		"huge length field":        func(d []byte, f int) []byte { d[f+3] = 0x7f; return d },
		"garbage after last frame": nil, // keeps the last frame, adds junk
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			first, last, lastPos := durableWrite(t, dir)
			path := filepath.Join(dir, "kurrentdb.log")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			frame := int(lastPos) - 8
			want, validEnd := first, frame
			if damage == nil {
				data = append(data, 0x13, 0, 0, 0, 1, 2, 3, 4, 5)
				want, validEnd = append(slices.Clone(first), last), len(data)-9
			} else {
				data = damage(data, frame)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}

			srv := kurrentdbtest.Start(t, kurrentdb.Options{DataDir: dir})
			if fi, err := os.Stat(path); err != nil || fi.Size() != int64(validEnd) {
				t.Fatalf("log size after replay = %v (%v), want cut to %d", fi.Size(), err, validEnd)
			}
			db := kurrentdbtest.Client(t, srv.URL())
			if got := readIDs(t, db, "torn"); !slices.Equal(got, want) {
				t.Fatalf("events after replay = %v, want %v", got, want)
			}
			after := esdbEvent()
			res, err := db.AppendToStream(context.Background(), "torn", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(uint64(len(want) - 1))}, after)
			if err != nil {
				t.Fatal(err)
			}
			if res.CommitPosition < uint64(validEnd) {
				t.Fatalf("position after replay %d, want >= %d", res.CommitPosition, validEnd)
			}
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			srv2 := kurrentdbtest.Start(t, kurrentdb.Options{DataDir: dir})
			db2 := kurrentdbtest.Client(t, srv2.URL())
			if got := readIDs(t, db2, "torn"); !slices.Equal(got, append(slices.Clone(want), after.EventID)) {
				t.Fatalf("events after second restart = %v", got)
			}
		})
	}
}

// TestDataDirIsExclusive: a second server on the same data directory is refused.
func TestDataDirIsExclusive(t *testing.T) {
	dir := t.TempDir()
	kurrentdbtest.Start(t, kurrentdb.Options{DataDir: dir})
	_, err := kurrentdb.Start(kurrentdb.Options{DataDir: dir})
	var se *kurrentdb.StorageError
	if !errors.As(err, &se) {
		t.Fatalf("second server on %s: err = %v, want *StorageError", dir, err)
	}
}

// TestForeignFileIsRefused: a data directory whose log has another header is
// an error, and the file is left as it was.
func TestForeignFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kurrentdb.log")
	if err := os.WriteFile(path, []byte("not a kurrentdb log at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := kurrentdb.Start(kurrentdb.Options{DataDir: dir})
	var fe *kurrentdb.LogFormatError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want *LogFormatError", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "not a kurrentdb log at all" {
		t.Fatalf("foreign file changed to %q", data)
	}
}

// TestDurableReplayReproducesTheLog: concurrent appends to a durable server
// (several per fsync batch), then a restart: $all after replay is the same
// events at the same positions, in the same order, and each stream's
// revisions are intact.
func TestDurableReplayReproducesTheLog(t *testing.T) {
	dir := t.TempDir()
	srv, err := kurrentdb.Start(kurrentdb.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	db := kurrentdbtest.Client(t, srv.URL())
	const writers, appends = 8, 50
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < appends; i++ {
				exp := esdb.ExpectedRevision(esdb.NoStream{})
				if i > 0 {
					exp = esdb.Revision(uint64(2*i - 1))
				}
				if _, err := db.AppendToStream(context.Background(), "replay-"+string(rune('a'+w)), esdb.AppendToStreamOptions{ExpectedRevision: exp}, esdbEvent(), esdbEvent()); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	before := allEvents(t, db, esdb.ReadAllOptions{})
	if len(before) != writers*appends*2 {
		t.Fatalf("$all has %d events before restart, want %d", len(before), writers*appends*2)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv2 := kurrentdbtest.Start(t, kurrentdb.Options{DataDir: dir})
	after := allEvents(t, kurrentdbtest.Client(t, srv2.URL()), esdb.ReadAllOptions{})
	if !slices.Equal(before, after) {
		t.Fatalf("$all after replay differs: %d entries before, %d after", len(before), len(after))
	}
}

type allEntry struct {
	id       uuid.UUID
	stream   string
	revision uint64
	position uint64
}
