package postgres

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestStreamOrderAndValues runs inserts, updates and deletes under REPLICA
// IDENTITY DEFAULT and FULL, a truncate, transactional and non-transactional
// logical messages and an ALTER TABLE mid-stream, and checks that each
// change arrives once, in commit order, with the right old and new values,
// ordinals and positions.
func TestStreamOrderAndValues(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `
CREATE TABLE d (id int PRIMARY KEY, v text);
CREATE TABLE f (id int PRIMARY KEY, v text, n int);
ALTER TABLE f REPLICA IDENTITY FULL;`)
	sink := newMemSink()
	cfg := baseConfig(pg, "postgres", "public.d", "f")
	cfg.SnapshotMode = SnapshotNever
	cfg.NeedOldValues = []string{"d", "f"}
	r := startSource(t, cfg, sink)
	waitForSlotActive(t, pg, "chron")

	// One Exec per transaction: a multi-statement simple query is one
	// implicit transaction.
	for _, sql := range []string{
		`BEGIN; INSERT INTO d VALUES (1, 'a'), (2, 'b'); INSERT INTO f VALUES (1, 'x', 10); COMMIT;`,
		`UPDATE d SET v = 'a2' WHERE id = 1`,
		`UPDATE d SET id = 3 WHERE id = 2`,
		`UPDATE f SET v = 'y' WHERE id = 1`,
		`BEGIN; DELETE FROM d WHERE id = 1; DELETE FROM f WHERE id = 1; SELECT pg_logical_emit_message(true, 'app', 'in-tx'); COMMIT;`,
		`SELECT pg_logical_emit_message(false, 'app', 'no-tx')`,
		`ALTER TABLE d ADD COLUMN extra numeric`,
		`INSERT INTO d VALUES (4, 'c', 1.50)`,
		`ALTER TABLE d DROP COLUMN v`,
		`INSERT INTO d VALUES (5, 2)`,
		`TRUNCATE f`,
	} {
		pg.Exec(t, "postgres", sql)
	}

	type want struct {
		op       contract.Op
		table    string
		old, new map[string]any
		ordinal  uint64
	}
	wants := []want{
		{contract.OpInsert, "d", nil, map[string]any{"id": int64(1), "v": "a"}, 0},
		{contract.OpInsert, "d", nil, map[string]any{"id": int64(2), "v": "b"}, 1},
		{contract.OpInsert, "f", nil, map[string]any{"id": int64(1), "v": "x", "n": int64(10)}, 2},
		{contract.OpUpdate, "d", nil, map[string]any{"id": int64(1), "v": "a2"}, 0},
		{contract.OpUpdate, "d", map[string]any{"id": int64(2)}, map[string]any{"id": int64(3), "v": "b"}, 0},
		{contract.OpUpdate, "f", map[string]any{"id": int64(1), "v": "x", "n": int64(10)}, map[string]any{"id": int64(1), "v": "y", "n": int64(10)}, 0},
		{contract.OpDelete, "d", map[string]any{"id": int64(1)}, nil, 0},
		{contract.OpDelete, "f", map[string]any{"id": int64(1), "v": "y", "n": int64(10)}, nil, 1},
		{contract.OpMessage, "", nil, nil, 2},
		{contract.OpMessage, "", nil, nil, 0},
		{contract.OpInsert, "d", nil, map[string]any{"id": int64(4), "v": "c", "extra": json.Number("1.50")}, 0},
		{contract.OpInsert, "d", nil, map[string]any{"id": int64(5), "extra": json.Number("2")}, 0},
		{contract.OpTruncate, "f", nil, nil, 0},
	}
	waitFor(t, 30*time.Second, "all changes", func() bool { return len(sink.changes()) >= len(wants) })
	got := sink.changes()
	if len(got) != len(wants) {
		t.Fatalf("got %d changes; want %d", len(got), len(wants))
	}
	var prevCommit contract.LSN
	for i, w := range wants {
		c := got[i]
		if c.Op != w.op || c.Table != w.table || c.Ordinal != w.ordinal ||
			!reflect.DeepEqual(c.Old, w.old) || !reflect.DeepEqual(c.New, w.new) {
			t.Errorf("change %d = %s %s ord %d old %v new %v; want %s %s ord %d old %v new %v",
				i, c.Op, c.Table, c.Ordinal, c.Old, c.New, w.op, w.table, w.ordinal, w.old, w.new)
		}
		if c.Database != "postgres" || c.Tx.CommitLSN == 0 || c.LSN == 0 {
			t.Errorf("change %d lacks its position: %+v", i, c)
		}
		if c.Tx.CommitLSN < prevCommit {
			t.Errorf("change %d: commit LSN %s goes back from %s", i, c.Tx.CommitLSN, prevCommit)
		}
		prevCommit = c.Tx.CommitLSN
		if c.Op == contract.OpMessage {
			if c.Tx.XID == 0 != (i == 9) || c.Tx.CommitTime.IsZero() != (i == 9) {
				t.Errorf("change %d: message Tx %+v (xid and time only for the transactional one)", i, c.Tx)
			}
		} else if c.Tx.XID == 0 || c.Tx.CommitTime.IsZero() {
			t.Errorf("change %d: Tx %+v lacks xid or commit time", i, c.Tx)
		}
		if c.Op != contract.OpMessage && !reflect.DeepEqual(c.Key, []string{"id"}) {
			t.Errorf("change %d: key %v; want [id]", i, c.Key)
		}
	}
	if m := got[8].Message; m == nil || m.Prefix != "app" || string(m.Content) != "in-tx" || !m.Transactional {
		t.Errorf("transactional message = %+v", m)
	}
	if m := got[9].Message; m == nil || string(m.Content) != "no-tx" || m.Transactional {
		t.Errorf("non-transactional message = %+v", m)
	}
	// The test server is plaintext: its tls warning is beside the point.
	var w []string
	for _, s := range r.src.Warnings() {
		if strings.HasPrefix(s, "replica identity ") {
			w = append(w, s)
		}
	}
	if len(w) != 1 {
		t.Errorf("replica identity warnings = %q; want one, for public.d (DEFAULT)", w)
	}
	if sink.replays != 0 {
		t.Errorf("%d transactions were delivered twice without a reconnect", sink.replays)
	}
	// Everything was acked: the slot's confirmed position reaches the end of
	// the last transaction.
	last := got[len(got)-1].Tx.CommitLSN
	waitFor(t, 10*time.Second, "confirmed_flush_lsn past the last commit", func() bool {
		return slotLSN(t, pg, "chron", "confirmed_flush_lsn") > last
	})
}

func waitForSlotActive(t testing.TB, pg *stack.Postgres, slot string) {
	t.Helper()
	waitFor(t, 30*time.Second, "slot "+slot+" active", func() bool {
		var active bool
		conn := pg.Connect(t, "postgres")
		_ = conn.QueryRow(t.Context(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		return active
	})
}

func slotLSN(t testing.TB, pg *stack.Postgres, slot, column string) contract.LSN {
	t.Helper()
	conn := pg.Connect(t, "postgres")
	var s string
	if err := conn.QueryRow(t.Context(), "SELECT "+column+"::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s); err != nil {
		t.Fatalf("reading %s of slot %s: %v", column, slot, err)
	}
	l, err := contract.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
