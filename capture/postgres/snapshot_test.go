package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// rowState is what the stream has said of one row so far.
type rowState struct {
	seen, deleted bool
	v             string
	snapshots     int // snapshot events of it (one snapshot id per test)
}

// model applies a source's changes in stream order, per id, and fails on
// what only a wrong hand-off between a snapshot and the stream can cause:
// a snapshot that shows another value than the changes before it (stale or
// too new), a snapshot of a deleted row (resurrected), a row snapshotted
// twice, an insert of a present row or a delete of a deleted one (doubled).
// Ids in initial existed before capture started: their first change may
// come before their snapshot.
type model struct {
	rows    map[int64]*rowState
	initial func(id int64) bool
}

func newModel(initial func(int64) bool) *model {
	return &model{rows: map[int64]*rowState{}, initial: initial}
}

func (m *model) row(id int64) *rowState {
	r := m.rows[id]
	if r == nil {
		r = &rowState{}
		m.rows[id] = r
	}
	return r
}

func (m *model) apply(c *contract.Change) error {
	switch c.Op {
	case contract.OpSnapshot:
		id := c.New["id"].(int64)
		r := m.row(id)
		v := c.New["v"].(string)
		switch {
		case r.deleted:
			return fmt.Errorf("snapshot of id %d after its delete (resurrected)", id)
		case r.snapshots > 0:
			return fmt.Errorf("snapshot of id %d twice (doubled)", id)
		case r.seen && r.v != v:
			return fmt.Errorf("snapshot of id %d shows %q after a change to %q: out of order", id, v, r.v)
		case !r.seen && !m.initial(id):
			return fmt.Errorf("snapshot of id %d, which was inserted after capture started, before its insert", id)
		}
		r.seen, r.v = true, v
		r.snapshots++
	case contract.OpInsert:
		id := c.New["id"].(int64)
		r := m.row(id)
		if r.seen && !r.deleted {
			return fmt.Errorf("insert of id %d, which is present (doubled)", id)
		}
		r.seen, r.deleted, r.v = true, false, c.New["v"].(string)
	case contract.OpUpdate:
		id := c.New["id"].(int64)
		r := m.row(id)
		if r.deleted || (!r.seen && !m.initial(id)) {
			return fmt.Errorf("update of id %d, which is missing (lost)", id)
		}
		r.seen, r.v = true, c.New["v"].(string)
	case contract.OpDelete:
		id := c.Old["id"].(int64)
		r := m.row(id)
		if r.deleted || (!r.seen && !m.initial(id)) {
			return fmt.Errorf("delete of id %d, which is missing (doubled or lost)", id)
		}
		r.seen, r.deleted = true, true
	}
	return nil
}

// compare checks the model against the table: every row present with its
// value, nothing else present. needSnapshot says which ids must also have
// had a snapshot event.
func (m *model) compare(t *testing.T, want map[int64]string, needSnapshot func(int64) bool) {
	t.Helper()
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 5 {
			t.Errorf(format, args...)
		}
	}
	for id, v := range want {
		r := m.rows[id]
		switch {
		case r == nil || !r.seen || r.deleted:
			report("id %d: missing from snapshot + stream; the table has %q", id, v)
		case r.v != v:
			report("id %d: captured %q; the table has %q", id, r.v, v)
		case needSnapshot(id) && r.snapshots != 1:
			report("id %d: %d snapshot events; want 1", id, r.snapshots)
		}
	}
	for id, r := range m.rows {
		if _, ok := want[id]; !ok && r.seen && !r.deleted {
			report("id %d: captured %q; the table has no such row", id, r.v)
		}
	}
	if bad > 0 {
		t.Errorf("%d rows differ", bad)
	}
}

func tableContent(t testing.TB, pg *stack.Postgres, table string) map[int64]string {
	t.Helper()
	rows, err := pg.Connect(t, "postgres").Query(t.Context(), "SELECT id, v FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64]string{}
	for rows.Next() {
		var id int64
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		m[id] = v
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return m
}

func currentLSN(t testing.TB, pg *stack.Postgres) contract.LSN {
	t.Helper()
	var s string
	if err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	l, _ := contract.ParseLSN(s)
	return l
}

// writer inserts new ids, updates and deletes random existing ones (ids
// 1..n), one transaction each, until stop is called. stop returns once the
// last statement has returned, so the table then holds every write: the
// writer is stopped between statements, never by cancelling one (a
// cancelled statement can still commit after the client gave up on it).
type writer struct {
	n      atomic.Int64
	halt   atomic.Bool
	done   chan error
	ids    int64
	update string // SQL of an update: $1 id, $2 value
}

func startWriter(t *testing.T, url string, ids int64) *writer {
	t.Helper()
	w := &writer{done: make(chan error, 1), ids: ids}
	go func() { w.done <- w.run(url) }()
	t.Cleanup(func() { w.halt.Store(true) })
	return w
}

func (w *writer) run(url string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	next := int64(1_000_000)
	for i := 0; !w.halt.Load(); i++ {
		var err error
		id := rand.Int64N(w.ids) + 1
		switch i % 3 {
		case 0:
			next++
			_, err = conn.Exec(ctx, "INSERT INTO h VALUES ($1, 'ins')", next)
		case 1:
			_, err = conn.Exec(ctx, "UPDATE h SET v = $2 WHERE id = $1", id, fmt.Sprintf("u%d", i))
		case 2:
			_, err = conn.Exec(ctx, "DELETE FROM h WHERE id = $1", id)
		}
		if err != nil {
			return err
		}
		w.n.Add(1)
	}
	return nil
}

func (w *writer) stop(t *testing.T) {
	t.Helper()
	w.halt.Store(true)
	if err := <-w.done; err != nil {
		t.Fatal(err)
	}
}

// snapshotDone reports whether the snapshot with id (or the initial one,
// id "") is done in state.
func snapshotDone(state SnapshotState, id string) bool {
	b, ok, _ := state.Load(context.Background(), "chron")
	if !ok {
		return false
	}
	e := b.Initial()
	if id != "" {
		e = b.Find(id)
	}
	return e != nil && e.Status == SnapshotDone
}

// checkStream applies every change the sinks kept (in order: earlier runs
// first) to a model and compares it with the table once the stream caught
// up with the end of the WAL.
func checkStream(t *testing.T, pg *stack.Postgres, initial int64, needSnapshot func(int64) bool, sinks ...*memSink) (snapRows int) {
	t.Helper()
	want := tableContent(t, pg, "h")
	final := currentLSN(t, pg)
	waitFor(t, 60*time.Second, "the stream to catch up", func() bool {
		return slotLSN(t, pg, "chron", "confirmed_flush_lsn") >= final
	})
	// The writer's inserts (ids above 1,000,000) may have been committed
	// before the slot existed too; one that was not is caught as an
	// insert after its row's snapshot (doubled).
	m := newModel(func(id int64) bool { return id >= 1 && id <= initial || id > 1_000_000 })
	var all []*contract.Change
	for _, s := range sinks {
		if s.mismatch != nil {
			t.Fatal(s.mismatch)
		}
		all = append(all, s.changes()...)
	}
	for _, c := range all {
		if c.Op == contract.OpSnapshot {
			snapRows++
		}
		if err := m.apply(c); err != nil {
			t.Fatal(err)
		}
	}
	m.compare(t, want, needSnapshot)
	return snapRows
}

// TestSnapshotHandoff runs a writer (inserts, updates, deletes) during the
// initial snapshot of 20,000 rows read in chunks of 200 while streaming:
// snapshot + stream equal the table, no row is missing, doubled, stale or
// resurrected, and every row that existed before capture and survived has
// exactly one snapshot event.
func TestSnapshotHandoff(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 20000) g;`)
	w := startWriter(t, pg.DatabaseURL("postgres"), 20000)
	waitFor(t, 10*time.Second, "the writer to start", func() bool { return w.n.Load() > 20 })

	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotChunkRows = 200
	r := startSource(t, cfg, sink)
	waitFor(t, 120*time.Second, "the snapshot to finish", func() bool { return snapshotDone(r.src.cfg.SnapshotState, "") })
	during := w.n.Load()
	waitFor(t, 30*time.Second, "writes after the snapshot", func() bool { return w.n.Load() > during+200 })
	w.stop(t)
	survivors := tableContent(t, pg, "h")
	snapRows := checkStream(t, pg, 20000, func(id int64) bool { _, ok := survivors[id]; return id <= 20000 && ok }, sink)
	chunks := testutilCounter(r.src.m.snapshotChunks)
	t.Logf("figure: snapshot hand-off: rows %d in %.0f chunks, %.0f rows read again, %.0f visibility waits, writer transactions %d (%d during the snapshot)",
		snapRows, chunks, testutilCounter(r.src.m.snapshotRequeued), testutilCounter(r.src.m.snapshotWaits), w.n.Load(), during)
	if chunks < 100 {
		t.Errorf("%.0f snapshot chunks; want >= 100", chunks)
	}
}

// failingSink fails the Commit of the failAt-th transaction that carries
// snapshot rows, as a crash would interrupt the snapshot.
type failingSink struct {
	*memSink
	failAt int
	seen   int
}

var errInjected = errors.New("injected sink failure")

func (f *failingSink) Commit(ctx context.Context, tx contract.Tx) error {
	if f.memSink.open != nil && len(f.memSink.open.changes) > 0 && f.memSink.open.changes[0].Op == contract.OpSnapshot {
		f.seen++
		if f.seen == f.failAt {
			return errInjected
		}
	}
	return f.memSink.Commit(ctx, tx)
}

// TestSnapshotResume interrupts the initial snapshot after 3 acknowledged
// chunks, then writes to the table: the next Source resumes at the 4th
// chunk whatever happened since (same snapshot id; its first chunk rows
// carry the floor to look for in the store, the later ones none), and the
// rows written in between arrive through the stream before their snapshot.
func TestSnapshotResume(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 1000) g;`)
	state := NewMemorySnapshotState()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotChunkRows = 100
	cfg.SnapshotState = state

	fs := &failingSink{memSink: newMemSink(), failAt: 4}
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	fs.src = src
	if err := src.Run(t.Context(), fs); !errors.Is(err, errInjected) {
		t.Fatalf("Run = %v; want the injected sink failure", err)
	}
	b, _, _ := state.Load(t.Context(), "chron")
	before := *b.Initial()
	if before.Status != SnapshotRunning || before.Rows != 300 || before.LastKey[0] != "300" {
		t.Fatalf("progress after the failure = %+v; want 300 rows up to key 300, running", before)
	}
	pg.Exec(t, "postgres", "UPDATE h SET v = 'changed' WHERE id = 900; DELETE FROM h WHERE id = 950; INSERT INTO h VALUES (5000, 'new')")

	waitFor(t, 30*time.Second, "the slot to be released", func() bool {
		var active bool
		err := pg.Connect(t, "postgres").QueryRow(t.Context(), "SELECT active FROM pg_replication_slots WHERE slot_name = 'chron'").Scan(&active)
		return err == nil && !active
	})
	sink := newMemSink()
	startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "the resumed snapshot", func() bool { return snapshotDone(state, "") })
	var snaps []*contract.Change
	for _, c := range sink.changes() {
		if c.Op == contract.OpSnapshot {
			snaps = append(snaps, c)
		}
	}
	if len(snaps) != 700 || snaps[0].New["id"] != int64(301) {
		t.Fatalf("resumed snapshot: %d rows from id %v; want 700 rows from id 301 (1000 - 300 done - 950 deleted + 5000 inserted)", len(snaps), snaps[0].New["id"])
	}
	for _, c := range snaps {
		wantRecheck := contract.LSN(0)
		if c.New["id"].(int64) <= 400 {
			wantRecheck = before.Floor
		}
		if c.Snapshot == nil || c.Snapshot.ID != before.ID || c.Snapshot.Recheck != wantRecheck {
			t.Fatalf("row %v: snapshot %+v; want id %s, recheck %s", c.New["id"], c.Snapshot, before.ID, wantRecheck)
		}
	}
	checkStream(t, pg, 1000, func(id int64) bool { return id != 950 && id <= 1000 }, fs.memSink, sink)
}

// TestSnapshotRequestWhileStreaming: a Source streams (no initial snapshot)
// under a writer; RequestSnapshot asks for the table: it is read in chunks
// while the stream goes on, with the requested id in every row, and
// snapshot + stream equal the table.
func TestSnapshotRequestWhileStreaming(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 5000) g;`)
	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotMode = SnapshotNever
	cfg.SnapshotChunkRows = 250
	r := startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })
	w := startWriter(t, pg.DatabaseURL("postgres"), 5000)
	waitFor(t, 10*time.Second, "the writer to start", func() bool { return w.n.Load() > 20 })

	if _, _, err := RequestSnapshot(t.Context(), ConnSettings{URL: pg.DatabaseURL("postgres")}, SnapshotRequest{Slot: "chron", Tables: []string{"nope"}}); err == nil {
		t.Fatal("a request for a table that does not exist was emitted")
	}
	id, _, err := RequestSnapshot(t.Context(), ConnSettings{URL: pg.DatabaseURL("postgres")}, SnapshotRequest{Slot: "chron", Tables: []string{"h"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 120*time.Second, "the requested snapshot", func() bool { return snapshotDone(r.src.cfg.SnapshotState, id) })
	if r.src.Phase() != PhaseStreaming {
		t.Errorf("phase during and after a requested snapshot: %s; want streaming (only the initial one makes it snapshot)", r.src.Phase())
	}
	w.stop(t)
	survivors := tableContent(t, pg, "h")
	n := checkStream(t, pg, 5000, func(id int64) bool { _, ok := survivors[id]; return id <= 5000 && ok }, sink)
	for _, c := range sink.changes() {
		if c.Op == contract.OpSnapshot && (c.Snapshot == nil || c.Snapshot.ID != id || c.Snapshot.Key != fmt.Sprintf("[%d]", c.New["id"])) {
			t.Fatalf("snapshot row %+v: want snapshot id %s and key [id]", c.Snapshot, id)
		}
	}
	t.Logf("figure: requested snapshot under writes: %d rows, %d writer transactions", n, w.n.Load())
}

// TestSnapshotWaitsForACommitNotYetVisible: a transaction waiting for a
// synchronous standby has its commit record flushed, so the slot streams
// its change, but it is not visible to new MVCC snapshots until the standby
// answers. A chunk read then would show the row as before the change,
// after the change in the row's stream (out of order). The reader sees the
// transaction committed and invisible, waits and reads again once it is
// visible: the row's snapshot shows the change.
func TestSnapshotWaitsForACommitNotYetVisible(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 100) g;`)
	local := pg.DatabaseURL("postgres") + "&synchronous_commit=local" // commits that never wait for the standby
	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotMode = SnapshotNever
	r := startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })

	admin := pg.Connect(t, "postgres")
	if _, err := admin.Exec(t.Context(), "ALTER SYSTEM SET synchronous_standby_names = 'ghost'"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(t.Context(), "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	// The checkpointer applies synchronous_standby_names some time after
	// the reload: until then commits do not wait. Update until one does.
	var stuck chan error
	value := ""
	for i := 0; stuck == nil; i++ {
		if i == 50 {
			t.Fatal("no update waited for the synchronous standby within 50 tries")
		}
		value = fmt.Sprintf("stuck%d", i)
		done := make(chan error, 1)
		go func(v string) {
			conn, err := pgx.Connect(context.Background(), pg.DatabaseURL("postgres")+"&synchronous_commit=on")
			if err != nil {
				done <- err
				return
			}
			defer conn.Close(context.Background())
			_, err = conn.Exec(context.Background(), "UPDATE h SET v = $1 WHERE id = 50", v)
			done <- err
		}(value)
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Second):
			stuck = done
		}
	}
	waitFor(t, 30*time.Second, "the waiting update in the stream", func() bool {
		for _, c := range sink.changes() {
			if c.Op == contract.OpUpdate && c.New["v"] == value {
				return true
			}
		}
		return false
	})
	id, _, err := RequestSnapshot(t.Context(), ConnSettings{URL: local}, SnapshotRequest{Slot: "chron", Tables: []string{"h"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the reader to wait for the invisible commit (or to complete)", func() bool {
		return testutilCounter(r.src.m.snapshotWaits) >= 3 || snapshotDone(r.src.cfg.SnapshotState, id)
	})
	if snapshotDone(r.src.cfg.SnapshotState, id) {
		t.Error("the snapshot completed while a change it cannot see was in the stream before it")
	}
	if _, err := admin.Exec(t.Context(), "ALTER SYSTEM RESET synchronous_standby_names"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(t.Context(), "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	if err := <-stuck; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the snapshot", func() bool { return snapshotDone(r.src.cfg.SnapshotState, id) })
	checkStream(t, pg, 100, func(int64) bool { return true }, sink)
	t.Logf("figure: chunk reads done again while a committed change was not visible: %.0f", testutilCounter(r.src.m.snapshotWaits))
}

// TestSnapshotPartitionedWithoutKey: a partitioned table without a primary
// key (its partitions REPLICA IDENTITY FULL) is read in position order, and
// each partition numbers its ctids from the start: two partitions of 1,000
// rows, read in chunks of 75, give every row exactly one snapshot event,
// each under a key of its own (the key names the row in its event ids).
func TestSnapshotPartitionedWithoutKey(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint NOT NULL, v text NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE h1 PARTITION OF h FOR VALUES FROM (1) TO (10000);
CREATE TABLE h2 PARTITION OF h FOR VALUES FROM (10000) TO (20000);
ALTER TABLE h1 REPLICA IDENTITY FULL; ALTER TABLE h2 REPLICA IDENTITY FULL;
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 1000) g;
INSERT INTO h SELECT g, 'v0' FROM generate_series(10001, 11000) g;`)
	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotChunkRows = 75
	r := startSource(t, cfg, sink)
	waitFor(t, 60*time.Second, "the snapshot to finish", func() bool { return snapshotDone(r.src.cfg.SnapshotState, "") })
	rows, keys := map[int64]int{}, map[string]int64{}
	for _, c := range sink.changes() {
		if c.Op != contract.OpSnapshot {
			continue
		}
		id := c.New["id"].(int64)
		rows[id]++
		if other, ok := keys[c.Snapshot.Key]; ok {
			t.Fatalf("ids %d and %d share the snapshot key %s", other, id, c.Snapshot.Key)
		}
		keys[c.Snapshot.Key] = id
	}
	for id := range tableContent(t, pg, "h") {
		if rows[id] != 1 {
			t.Errorf("id %d: %d snapshot events; want 1", id, rows[id])
		}
	}
	if len(rows) != 2000 {
		t.Errorf("%d rows snapshotted; want 2000", len(rows))
	}
}

// countingState counts the saves of a MemorySnapshotState.
type countingState struct {
	*MemorySnapshotState
	saves atomic.Int64
}

func (c *countingState) Save(ctx context.Context, b Snapshots) error {
	c.saves.Add(1)
	return c.MemorySnapshotState.Save(ctx, b)
}

// TestSnapshotSavesOncePerChunk: the initial snapshot of three tables (250
// rows, 200 rows, none) in chunks of 100 saves its state once per chunk
// that emitted rows (3 + 2), plus its queueing, its start and its end: a
// table's end rides on its last chunk's save, or on the next save when its
// last read found no row. Every row is read once and the end says done at
// the last table.
func TestSnapshotSavesOncePerChunk(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE a (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE b (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE c (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO a SELECT g, 'v0' FROM generate_series(1, 250) g;
INSERT INTO b SELECT g, 'v0' FROM generate_series(1, 200) g;`)
	state := &countingState{MemorySnapshotState: NewMemorySnapshotState()}
	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "a", "b", "c")
	cfg.SnapshotChunkRows = 100
	cfg.SnapshotState = state
	startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "the snapshot to finish", func() bool { return snapshotDone(state, "") })
	book, _, _ := state.Load(t.Context(), "chron")
	if e := book.Initial(); e.Rows != 450 || e.Table != 3 || e.LastKey != nil {
		t.Errorf("the snapshot's end: %+v; want 450 rows, table 3, no last key", e)
	}
	if n := state.saves.Load(); n != 8 {
		t.Errorf("%d saves of the snapshot state; want 8 (queued, started, 5 chunks, done)", n)
	}
	snaps := map[string]int{}
	for _, c := range sink.changes() {
		if c.Op == contract.OpSnapshot {
			snaps[fmt.Sprintf("%s.%v", c.Table, c.New["id"])]++
		}
	}
	if len(snaps) != 450 {
		t.Errorf("%d rows snapshotted; want 450", len(snaps))
	}
	for k, n := range snaps {
		if n != 1 {
			t.Errorf("%s: %d snapshot events; want 1", k, n)
		}
	}
}

// TestSnapshotRequestOfAnUncapturedTable: any role that can connect can
// emit a request, and RequestSnapshot only checks that the table exists and
// that the requester may read it; capture reads captured tables only. A
// request for a table outside Config.Tables is saved as failed, naming the
// table, and no row of it is read, while the captured table's request
// after it is read.
func TestSnapshotRequestOfAnUncapturedTable(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE secret (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 10) g;
INSERT INTO secret SELECT g, 's' FROM generate_series(1, 10) g;`)
	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotMode = SnapshotNever
	r := startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })
	cs := ConnSettings{URL: pg.DatabaseURL("postgres")}
	bad, _, err := RequestSnapshot(t.Context(), cs, SnapshotRequest{Slot: "chron", Tables: []string{"h", "secret"}})
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := RequestSnapshot(t.Context(), cs, SnapshotRequest{Slot: "chron", Tables: []string{"h"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the captured table's snapshot", func() bool { return snapshotDone(r.src.cfg.SnapshotState, good) })
	book, _, _ := r.src.cfg.SnapshotState.Load(t.Context(), "chron")
	if e := book.Find(bad); e == nil || e.Status != SnapshotFailed || !strings.Contains(e.Error, "public.secret") || e.Rows != 0 {
		t.Errorf("the request naming an uncaptured table: %+v; want failed, naming public.secret, no row read", e)
	}
	for _, c := range sink.changes() {
		if c.Op == contract.OpSnapshot && (c.Table != "h" || c.Snapshot.ID != good) {
			t.Fatalf("snapshot row of %s under snapshot %s; want only h's, under %s", c.Table, c.Snapshot.ID, good)
		}
	}
}

// TestSnapshotCancelledWhileItStarts: a cancellation that arrives while the
// reader estimates the snapshot's rows (here: its EXPLAIN waits for a lock
// the test holds) is not undone when the reader marks it running: the
// snapshot ends cancelled with no row read, and the next one is read.
func TestSnapshotCancelledWhileItStarts(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 100) g;`)
	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotMode = SnapshotNever
	r := startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })

	locker := pg.Connect(t, "postgres")
	tx, err := locker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), "LOCK TABLE h IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	// The request as RequestSnapshot emits it (its own EXPLAIN would wait
	// for the lock too).
	emitter := pg.Connect(t, "postgres")
	if _, err := emitMessage(t.Context(), emitter, snapshotMessage{Kind: msgRequest, Slot: "chron", ID: "first", Tables: []string{"public.h"}, Where: "v <> ''"}); err != nil {
		t.Fatal(err)
	}
	watcher := pg.Connect(t, "postgres")
	waitFor(t, 4*time.Second, "the reader's estimate to wait for the lock", func() bool {
		var n int
		err := watcher.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'EXPLAIN%'`).Scan(&n)
		return err == nil && n == 1
	})
	if _, err := emitMessage(t.Context(), emitter, snapshotMessage{Kind: msgCancel, Slot: "chron", ID: "first"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 4*time.Second, "the cancellation to be saved", func() bool {
		b, _, _ := r.src.cfg.SnapshotState.Load(t.Context(), "chron")
		e := b.Find("first")
		return e != nil && e.Status == SnapshotCancelled
	})
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	second, _, err := RequestSnapshot(t.Context(), ConnSettings{URL: pg.DatabaseURL("postgres")}, SnapshotRequest{Slot: "chron", Tables: []string{"h"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the next snapshot", func() bool { return snapshotDone(r.src.cfg.SnapshotState, second) })
	b, _, _ := r.src.cfg.SnapshotState.Load(t.Context(), "chron")
	if e := b.Find("first"); e.Status != SnapshotCancelled || e.Rows != 0 {
		t.Errorf("the snapshot cancelled while it started: %s with %d rows; want cancelled, none read", e.Status, e.Rows)
	}
	for _, c := range sink.changes() {
		if c.Op == contract.OpSnapshot && c.Snapshot.ID == "first" {
			t.Fatalf("row %v read by the cancelled snapshot", c.New["id"])
		}
	}
}

// TestSnapshotTableChangedWhileRead: DDL on a table while its snapshot
// reads it (a column renamed, then one added) does not fail the snapshot
// or lose a row: the chunk read that meets the change describes the table
// again and reads on, so each row is snapshotted once, with the columns the
// table had when its chunk was read, in that order.
func TestSnapshotTableChangedWhileRead(t *testing.T) {
	t.Parallel()
	pg, r, snapRows, waitSnap := startDDLSnapshot(t)
	sink := r.sink
	waitSnap("300 snapshot rows", func() bool { return snapRows() >= 300 })
	pg.Exec(t, "postgres", `ALTER TABLE h RENAME v TO w`)
	at := snapRows()
	waitSnap("300 more snapshot rows", func() bool { return snapRows() >= at+300 })
	pg.Exec(t, "postgres", `ALTER TABLE h ADD COLUMN x int NOT NULL DEFAULT 7`)
	waitSnap("the snapshot to finish", func() bool { return snapshotDone(r.src.cfg.SnapshotState, "") })

	// The column sets in delivery order: {id v}, then {id w}, then {id w x}.
	phases := []string{"id v", "id w", "id w x"}
	phase, seen, rows := 0, make([]int, len(phases)), map[int64]int{}
	for _, c := range sink.changes() {
		if c.Op != contract.OpSnapshot {
			continue
		}
		rows[c.New["id"].(int64)]++
		cols := slices.Sorted(maps.Keys(c.New))
		i := slices.Index(phases, strings.Join(cols, " "))
		if i < phase {
			t.Fatalf("snapshot row %v after rows with the columns %q", c.New, phases[phase])
		}
		phase = i
		seen[i]++
	}
	for i, n := range seen {
		if n == 0 {
			t.Errorf("no snapshot row with the columns %q (rows per column set: %v)", phases[i], seen)
		}
	}
	if len(rows) != 2000 {
		t.Errorf("%d rows snapshotted; want 2000", len(rows))
	}
	for id, n := range rows {
		if n != 1 {
			t.Errorf("id %d: %d snapshot events; want 1", id, n)
		}
	}
	t.Logf("figure: snapshot rows per column set %v: %v", phases, seen)
}

// startDDLSnapshot starts a Source whose initial snapshot reads the 2000
// rows of h (id, v) in chunks of 50 at 500 rows a second, and returns it
// with a count of the snapshot rows delivered and a wait that fails the
// test as soon as Run returns.
func startDDLSnapshot(t *testing.T) (*stack.Postgres, *running, func() int, func(string, func() bool)) {
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 2000) g;`)
	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotChunkRows = 50
	cfg.SnapshotMaxRowsPerSecond = 500
	r := startSource(t, cfg, sink)
	snapRows := func() int {
		n := 0
		for _, c := range sink.changes() {
			if c.Op == contract.OpSnapshot {
				n++
			}
		}
		return n
	}
	waitSnap := func(what string, cond func() bool) {
		t.Helper()
		waitFor(t, 60*time.Second, what, func() bool {
			select {
			case err := <-r.done:
				r.done <- err
				t.Fatalf("Run returned: %v", err)
			default:
			}
			return cond()
		})
	}
	return pg, r, snapRows, waitSnap
}

// TestSnapshotSeesDDLCommittedWhileItsReadWaits: a column added by a
// transaction that holds the table's lock while a chunk read waits for it
// is in that chunk's rows and every later one. The read takes the lock
// before its MVCC snapshot, so its pg_attribute read shows the column the
// chunk's SELECT sees; with the snapshot taken first, it showed the old
// columns and the rows went out without it.
func TestSnapshotSeesDDLCommittedWhileItsReadWaits(t *testing.T) {
	t.Parallel()
	pg, r, snapRows, waitSnap := startDDLSnapshot(t)
	waitSnap("300 snapshot rows", func() bool { return snapRows() >= 300 })
	ctx := t.Context()
	ddl, err := pgx.Connect(ctx, pg.DatabaseURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer ddl.Close(context.Background())
	tx, err := ddl.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE h ADD COLUMN x int NOT NULL DEFAULT 7`); err != nil {
		t.Fatal(err)
	}
	waitSnap("a chunk read waiting for the table's lock", func() bool {
		var n int
		err := ddl.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&n)
		return err == nil && n > 0
	})
	before := snapRows()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitSnap("the snapshot to finish", func() bool { return snapshotDone(r.src.cfg.SnapshotState, "") })
	var snaps []*contract.Change
	for _, c := range r.sink.changes() {
		if c.Op == contract.OpSnapshot {
			snaps = append(snaps, c)
		}
	}
	if len(snaps) != 2000 {
		t.Errorf("%d snapshot rows; want 2000", len(snaps))
	}
	for _, c := range snaps[before:] {
		if _, ok := c.New["x"]; !ok {
			t.Fatalf("snapshot row %v, read after the column x was added, lacks it", c.New)
		}
	}
	t.Logf("figure: %d snapshot rows before the DDL committed, %d after, all with the new column", before, len(snaps)-before)
}
