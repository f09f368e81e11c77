package store_test

import (
	"fmt"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

// snapRow is the event of snapshot row key of snapshot snap, emitted at
// position (lsn, ordinal), with recheck as its Event.Recheck.
func snapRow(snap string, key, lsn contract.LSN, ordinal uint64, recheck contract.LSN) store.Event {
	return store.Event{
		Stream: fmt.Sprintf("item-%d", key), Type: "ItemSnapshotted", Data: []byte(fmt.Sprintf(`{"id":%d,"at":%d}`, key, lsn)),
		Source: contract.Source{Schema: "public", Table: "items", Op: contract.OpSnapshot, Pos: contract.Pos{CommitLSN: lsn, Ordinal: ordinal},
			Snapshot: snap, SnapshotKey: fmt.Sprintf("[%d]", key)},
		Recheck: recheck,
	}
}

func change(key, lsn contract.LSN) store.Event {
	return store.Event{
		Stream: fmt.Sprintf("item-%d", key), Type: "ItemUpdated", Data: []byte(fmt.Sprintf(`{"id":%d,"at":%d}`, key, lsn)),
		Source: contract.Source{Schema: "public", Table: "items", Op: contract.OpUpdate, Pos: contract.Pos{CommitLSN: lsn}},
	}
}

// expectData checks that each stream of want holds events with exactly
// those data, in order.
func expectData(t *testing.T, db *esdb.Client, want map[string][]string) {
	t.Helper()
	for stream, datas := range want {
		got := readStream(t, db, stream)
		if len(got) != len(datas) {
			t.Errorf("%s holds %d events; want %d: %v", stream, len(got), len(datas), got)
			continue
		}
		for i, d := range datas {
			if got[i].data != d {
				t.Errorf("%s event %d = %s; want %s", stream, i, got[i].data, d)
			}
		}
	}
}

// TestSnapshotRowsReadAgainAreStoredOnce: a run stores a chunk's snapshot
// rows (at its high watermark, LSN 200) and a later change; a new session
// of the same process reads the chunk again (warm streams, LSN 260); then
// the process stops before the chunk's progress is saved. The next process
// re-delivers the change
// and reads the chunk again: its rows land at a new position (LSN 300) with
// the same ids and Recheck = the floor (100). The rows already stored are
// dropped (their stream keeps the first copy, before the change), the row
// not stored yet is appended, and a new snapshot id of a stored row is a new
// event.
func TestSnapshotRowsReadAgainAreStoredOnce(t *testing.T) {
	bothPaths(t, testSnapshotRowsReadAgainAreStoredOnce)
}

func testSnapshotRowsReadAgainAreStoredOnce(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	first := start(t, p.on(srv), db, store.Config{})
	before := []tx{
		{lsn: 100, events: []store.Event{change(1, 100)}},
		{lsn: 200, events: []store.Event{snapRow("s1", 1, 200, 0, 100), snapRow("s1", 2, 200, 1, 100)}},
		{lsn: 250, events: []store.Event{change(1, 250)}},
	}
	first.feed(t, before)
	first.waitDurable(t, 250)
	// A new capture session of the same process (a reconnect) reads the
	// chunk again: its streams are warm in this appender.
	first.feed(t, []tx{{lsn: 260, events: []store.Event{snapRow("s1", 1, 260, 0, 100), snapRow("s1", 2, 260, 1, 100)}}})
	first.waitDurable(t, 260)
	if st := first.a.Stats(); st.Deduplicated != 2 {
		t.Errorf("stats %+v: want the two rows read again in the same process de-duplicated", st)
	}
	first.stop()

	second := start(t, p.on(srv), db, store.Config{})
	second.feed(t, []tx{
		before[2], // re-delivered: the slot was confirmed before 250
		{lsn: 300, events: []store.Event{snapRow("s1", 1, 300, 0, 100), snapRow("s1", 2, 300, 1, 100), snapRow("s1", 3, 300, 2, 100)}},
		{lsn: 400, events: []store.Event{snapRow("s2", 2, 400, 0, 0)}},
	})
	second.waitDurable(t, 400)

	want := map[string][]string{
		"item-1": {`{"id":1,"at":100}`, `{"id":1,"at":200}`, `{"id":1,"at":250}`},
		"item-2": {`{"id":2,"at":200}`, `{"id":2,"at":400}`},
		"item-3": {`{"id":3,"at":300}`},
	}
	expectData(t, db, want)
	ids := map[string]bool{}
	for _, stream := range []string{"item-1", "item-2", "item-3"} {
		for _, e := range readStream(t, db, stream) {
			if e.meta["snapshot"] != nil {
				ids[e.id.String()] = true
				key := e.meta["snapshotKey"].(string)
				if e.id != contract.SnapshotEventID(slot, e.meta["snapshot"].(string), "public.items", key, 0) {
					t.Errorf("%s: snapshot row %s has id %s; want SnapshotEventID", stream, key, e.id)
				}
			} else if e.meta["snapshotKey"] != nil {
				t.Errorf("%s: a change has snapshotKey metadata: %v", stream, e.meta)
			}
		}
	}
	if len(ids) != 4 {
		t.Errorf("%d distinct snapshot event ids; want 4 (s1 rows 1-3, s2 row 2)", len(ids))
	}
	if st := second.a.Stats(); st.Deduplicated < 3 {
		t.Errorf("stats %+v: want the re-delivered change and the two stored rows de-duplicated", st)
	}
}

// TestSnapshotRowsRecheckReadsOnce: after a restart (every stream cold),
// the first chunk's rows are rechecked with one read of each stream's end,
// which also gives the stream's revision: no append is refused as a wrong
// expected version, so no tail read and no second read-back follow, and the
// streams are warm for the changes after the chunk. The crashed run had
// stored row 1, not row 2 (whose stream holds a change); row 3's stream is
// new.
func TestSnapshotRowsRecheckReadsOnce(t *testing.T) { bothPaths(t, testSnapshotRowsRecheckReadsOnce) }

func testSnapshotRowsRecheckReadsOnce(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	first := start(t, p.on(srv), db, store.Config{})
	first.feed(t, []tx{
		{lsn: 100, events: []store.Event{change(1, 100), change(2, 100)}},
		{lsn: 200, events: []store.Event{snapRow("s1", 1, 200, 0, 100)}},
	})
	first.waitDurable(t, 200)
	first.stop()

	second := start(t, p.on(srv), db, store.Config{})
	second.feed(t, []tx{{lsn: 300, events: []store.Event{
		snapRow("s1", 1, 300, 0, 100), snapRow("s1", 2, 300, 1, 100), snapRow("s1", 3, 300, 2, 100),
	}}})
	second.waitDurable(t, 300)
	second.feed(t, []tx{{lsn: 400, events: []store.Event{change(1, 400), change(2, 400), change(3, 400)}}})
	second.waitDurable(t, 400)

	want := map[string][]string{
		"item-1": {`{"id":1,"at":100}`, `{"id":1,"at":200}`, `{"id":1,"at":400}`},
		"item-2": {`{"id":2,"at":100}`, `{"id":2,"at":300}`, `{"id":2,"at":400}`},
		"item-3": {`{"id":3,"at":300}`, `{"id":3,"at":400}`},
	}
	expectData(t, db, want)
	st := second.a.Stats()
	if st.TailReads != 3 || st.Deduplicated != 1 || st.Retries != 0 || st.Conflicts != 0 {
		t.Errorf("stats %+v: want 3 reads (one per stream: the rows' recheck, which settles the revision too), row 1 de-duplicated, no retry or conflict", st)
	}
}
