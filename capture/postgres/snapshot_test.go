package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// model applies changes to a map keyed by id and fails on any change that
// could only come from a lost or doubled hand-off: a snapshot or insert of
// a key already present, an update or delete of a missing one.
type model map[int64]string

func (m model) apply(c *contract.Change) error {
	switch c.Op {
	case contract.OpSnapshot, contract.OpInsert:
		id := c.New["id"].(int64)
		if _, dup := m[id]; dup {
			return fmt.Errorf("%s of id %d, which is already present (doubled)", c.Op, id)
		}
		m[id] = c.New["v"].(string)
	case contract.OpUpdate:
		id := c.New["id"].(int64)
		if _, ok := m[id]; !ok {
			return fmt.Errorf("update of id %d, which is missing (lost)", id)
		}
		m[id] = c.New["v"].(string)
	case contract.OpDelete:
		id := c.Old["id"].(int64)
		if _, ok := m[id]; !ok {
			return fmt.Errorf("delete of id %d, which is missing (lost)", id)
		}
		delete(m, id)
	}
	return nil
}

func tableContent(t testing.TB, pg *stack.Postgres, table string) model {
	t.Helper()
	rows, err := pg.Connect(t, "postgres").Query(t.Context(), "SELECT id, v FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	m := model{}
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

func compareModel(t *testing.T, got, want model) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("snapshot + stream has %d rows; the table has %d", len(got), len(want))
	}
	bad := 0
	for id, v := range want {
		if g, ok := got[id]; !ok || g != v {
			if bad++; bad <= 5 {
				t.Errorf("id %d: captured %q (present %v); table has %q", id, g, ok, v)
			}
		}
	}
}

// TestSnapshotHandoff runs a writer (inserts, updates, deletes) during the
// initial snapshot of 20,000 rows read in 100 chunks; afterwards snapshot +
// stream must equal the table exactly, with no key missing or doubled.
func TestSnapshotHandoff(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 20000) g;`)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var writes atomic.Int64
	writerDone := make(chan error, 1)
	go func() { writerDone <- writeLoop(ctx, pg.DatabaseURL("postgres"), &writes) }()
	waitFor(t, 10*time.Second, "the writer to start", func() bool { return writes.Load() > 20 })

	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotChunkRows = 200
	startSource(t, cfg, sink)
	waitFor(t, 60*time.Second, "the snapshot to finish", func() bool {
		p, ok, _ := sink.src.cfg.SnapshotState.Load(ctx, "chron")
		return ok && p.Done
	})
	during := writes.Load()
	waitFor(t, 30*time.Second, "writes after the snapshot", func() bool { return writes.Load() > during+200 })
	cancel()
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	want := tableContent(t, pg, "h")
	final := currentLSN(t, pg)
	waitFor(t, 30*time.Second, "the stream to catch up", func() bool {
		return slotLSN(t, pg, "chron", "confirmed_flush_lsn") >= final
	})
	got := model{}
	snapRows := 0
	for _, c := range sink.changes() {
		if c.Op == contract.OpSnapshot {
			snapRows++
		}
		if err := got.apply(c); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("figure: snapshot hand-off: rows %d in %d chunks, writer transactions %d (%d during the snapshot)", snapRows, sink.snapshots, writes.Load(), during)
	if sink.snapshots < 100 {
		t.Errorf("%d snapshot chunks; want >= 100", sink.snapshots)
	}
	compareModel(t, got, want)
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

// writeLoop inserts new ids, updates and deletes random existing ones, one
// transaction each, until ctx ends.
func writeLoop(ctx context.Context, url string, n *atomic.Int64) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	next := int64(1_000_000)
	for i := 0; ctx.Err() == nil; i++ {
		var err error
		id := rand.Int64N(20000) + 1
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
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		n.Add(1)
	}
	return nil
}

// failingSink fails Commit of the snapshot chunk number failAt, as a crash
// would interrupt the snapshot.
type failingSink struct {
	*memSink
	failAt int
	seen   int
}

var errInjected = errors.New("injected sink failure")

func (f *failingSink) Commit(ctx context.Context, tx contract.Tx) error {
	if tx.XID == 0 && f.memSink.open != nil && len(f.memSink.open.changes) > 0 && f.memSink.open.changes[0].Op == contract.OpSnapshot {
		f.seen++
		if f.seen == f.failAt {
			return errInjected
		}
	}
	return f.memSink.Commit(ctx, tx)
}

// TestSnapshotResume interrupts a snapshot after 3 acknowledged chunks. With
// no write in between, the next Source resumes at the 4th chunk (same
// snapshot point, ordinals continuing); after a write to the table, resuming
// would not be consistent, so the snapshot restarts from a new slot.
func TestSnapshotResume(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE h (id bigint PRIMARY KEY, v text NOT NULL);
INSERT INTO h SELECT g, 'v0' FROM generate_series(1, 1000) g;`)
	state := NewMemorySnapshotState()
	cfg := baseConfig(pg, "postgres", "h")
	cfg.SnapshotChunkRows = 100
	cfg.SnapshotState = state

	interrupt := func() SnapshotProgress {
		t.Helper()
		fs := &failingSink{memSink: newMemSink(), failAt: 4}
		src, err := New(cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		fs.src = src
		if err := src.Run(t.Context(), fs); !errors.Is(err, errInjected) {
			t.Fatalf("Run = %v; want the injected sink failure", err)
		}
		p, ok, _ := state.Load(t.Context(), "chron")
		if !ok || p.Done || p.Rows != 300 {
			t.Fatalf("progress after the failure = %+v; want 300 rows, not done", p)
		}
		return p
	}

	// 1. Resume.
	before := interrupt()
	sink := newMemSink()
	r := startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "the resumed snapshot", func() bool { p, _, _ := state.Load(t.Context(), "chron"); return p.Done })
	got := sink.changes()
	if len(got) != 700 || got[0].Ordinal != 300 || got[0].New["id"] != int64(301) || got[0].Tx.CommitLSN != before.Point {
		t.Fatalf("resumed snapshot: %d rows, first ordinal %d id %v point %s; want 700 rows from ordinal 300, id 301, point %s",
			len(got), got[0].Ordinal, got[0].New["id"], got[0].Tx.CommitLSN, before.Point)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// 2. Restart: drop the slot and state, interrupt again, then write. The
	// stopped source's walsender exits on the server a moment after the
	// client closed; the slot can only be dropped once it is released.
	conn := pg.Connect(t, "postgres")
	waitFor(t, 30*time.Second, "the slot to be released", func() bool {
		var active bool
		err := conn.QueryRow(t.Context(), "SELECT active FROM pg_replication_slots WHERE slot_name = 'chron'").Scan(&active)
		return err == nil && !active
	})
	pg.Exec(t, "postgres", "SELECT pg_drop_replication_slot('chron')")
	state = NewMemorySnapshotState()
	cfg.SnapshotState = state
	before = interrupt()
	pg.Exec(t, "postgres", "UPDATE h SET v = 'changed' WHERE id = 900")
	sink = newMemSink()
	startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "the restarted snapshot", func() bool { p, _, _ := state.Load(t.Context(), "chron"); return p.Done })
	after, _, _ := state.Load(t.Context(), "chron")
	got = sink.changes()
	if len(got) != 1000 || got[0].Ordinal != 0 || after.Point == before.Point {
		t.Fatalf("restarted snapshot: %d rows from ordinal %d, point %s (before %s); want 1000 rows from 0 at a new point",
			len(got), got[0].Ordinal, after.Point, before.Point)
	}
	m := model{}
	for _, c := range got {
		if err := m.apply(c); err != nil {
			t.Fatal(err)
		}
	}
	compareModel(t, m, tableContent(t, pg, "h"))
}
