package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/jackc/pgx/v5"
)

// addRows is how many rows b has before it is added; addBuckets how many
// streams each table's rows are spread over.
const (
	addRows    = 3000
	addBuckets = 50
)

// addRulesA maps a's updates; addRulesB adds b's inserts, updates,
// deletes and snapshot rows (the reload's new rules).
const addRulesA = `capture:
  - name: a-updated
    table: public.a
    on: [update]
    stream: {category: ta, id: 'string(new.id % 50)'}
    type: AUpdated
    data: {id: new.id, v: new.v}
`

const addRulesB = `  - name: b-written
    table: public.b
    on: [insert, update, snapshot]
    stream: {category: tb, id: 'string(new.id % 50)'}
    type: BWritten
    data: {id: new.id, v: new.v}
  - name: b-deleted
    table: public.b
    on: [delete]
    stream: {category: tb, id: 'string(old.id % 50)'}
    type: BDeleted
    data: {id: old.id}
`

// rowOp is one committed write of a tableWriter.
type rowOp struct {
	seq  int64  // the writer's op number, in commit order
	kind string // insert, update, delete
	v    string
}

// tableWriter writes one table on one connection (so its commits are in
// the order it made them), one row per transaction, at about perSecond,
// recording every committed write per row. With churn it also inserts new
// rows (ids above rows) and deletes some of them; rows 1..rows are only
// updated. It stops between statements, never by cancelling one.
type tableWriter struct {
	table string
	rows  int
	churn bool

	mu   sync.Mutex
	ops  map[int][]rowOp
	n    atomic.Int64 // committed writes
	halt atomic.Bool
	done chan error
}

func startTableWriter(t *testing.T, url, table string, rows, perSecond int, churn bool) *tableWriter {
	w := &tableWriter{table: table, rows: rows, churn: churn, ops: map[int][]rowOp{}, done: make(chan error, 1)}
	go func() { w.done <- w.run(url, perSecond) }()
	t.Cleanup(func() { w.halt.Store(true) })
	return w
}

func (w *tableWriter) run(url string, perSecond int) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rng := rand.New(rand.NewPCG(uint64(len(w.table)), 7))
	var born []int // inserted rows not deleted yet
	next, every, at := w.rows+1, time.Second/time.Duration(perSecond), time.Now()
	for i := int64(0); !w.halt.Load(); i++ {
		op := rowOp{seq: i, kind: "update", v: fmt.Sprintf("%s%d", w.table, i)}
		r, id := rng.IntN(100), 1+rng.IntN(w.rows)
		var sql string
		switch {
		case w.churn && r < 10 && len(born) > 0:
			k := rng.IntN(len(born))
			id, op.kind, sql = born[k], "delete", "DELETE FROM "+w.table+" WHERE id = $1 AND $2 <> ''"
			born = slices.Delete(born, k, k+1)
		case w.churn && r < 25:
			id, op.kind, sql = next, "insert", "INSERT INTO "+w.table+" (id, v) VALUES ($1, $2)"
			born, next = append(born, next), next+1
		case w.churn && r < 40 && len(born) > 0:
			id, sql = born[rng.IntN(len(born))], "UPDATE "+w.table+" SET v = $2 WHERE id = $1"
		default:
			sql = "UPDATE " + w.table + " SET v = $2 WHERE id = $1"
		}
		if _, err := conn.Exec(ctx, sql, id, op.v); err != nil {
			return fmt.Errorf("%s %s id %d: %w", op.kind, w.table, id, err)
		}
		w.mu.Lock()
		w.ops[id] = append(w.ops[id], op)
		w.mu.Unlock()
		w.n.Add(1)
		at = at.Add(every)
		time.Sleep(time.Until(at)) // the write rate, not a wait for a result
	}
	return nil
}

func (w *tableWriter) stop(t *testing.T) {
	t.Helper()
	w.halt.Store(true)
	if err := <-w.done; err != nil {
		t.Fatal(err)
	}
}

// tableRows reads a table's rows (id -> v).
func tableRows(t *testing.T, e *env, table string) map[int]string {
	t.Helper()
	conn := e.conn()
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT id, v FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	var id int
	var v string
	if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error { out[id] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// rowEvent is one stored event of a row: its type and value.
type rowEvent struct {
	snapshot bool
	kind     string // insert/update (BWritten, AUpdated), delete, snapshot
	v        string
}

// rowStreams reads the streams <category>-0..addBuckets-1 and groups their
// events by row id, in stream order; snapIDs collects the snapshot ids in
// the events' metadata.
func rowStreams(t *testing.T, db *esdb.Client, category string, snapIDs map[string]bool) map[int][]rowEvent {
	t.Helper()
	out := map[int][]rowEvent{}
	for k := 0; k < addBuckets; k++ {
		for _, ev := range readAll(t, db, fmt.Sprintf("%s-%d", category, k)) {
			id, _ := strconv.Atoi(fmt.Sprint(ev.Data["id"]))
			re := rowEvent{kind: fmt.Sprint(ev.Meta["op"]), v: fmt.Sprint(ev.Data["v"])}
			if s, ok := ev.Meta["snapshot"]; ok && s != nil && s != "" {
				re.snapshot = true
				snapIDs[fmt.Sprint(s)] = true
			}
			if ev.Type == "BDeleted" {
				re.v = ""
			}
			out[id] = append(out[id], re)
		}
	}
	return out
}

// addedSnapshot returns the saved snapshot of table (a requested one), nil
// before it is saved.
func addedSnapshot(t *testing.T, db *esdb.Client, table string) map[string]any {
	saved := readAll(t, db, "chronicler-snapshot-"+slot)
	if len(saved) == 0 {
		return nil
	}
	list, _ := saved[len(saved)-1].Data["snapshots"].([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && fmt.Sprint(m["tables"]) == "["+table+"]" {
			return m
		}
	}
	return nil
}

// TestTableAddedByReloadUnderLoad (issue 16): chronicler captures a under
// writes; b, with rows, is written too. A reload (SIGHUP) whose config
// adds b to postgres.tables without add_missing_tables is refused with the
// ALTER PUBLICATION statement; with it, the same process adds b (and warns
// that a changed heartbeat_interval needs a restart): every
// row b had gets one snapshot event, every write to b committed after the
// reload took effect has its event once, each row's stream shows its
// writes in commit order with the snapshot event showing exactly the
// writes before it, and the last event of each row is the table's row.
// A reload removing a is refused, and a's updates are each stored once,
// in order, throughout. Capture is never restarted ("capture: streaming"
// once).
func TestTableAddedByReloadUnderLoad(t *testing.T) {
	e := newEnvWith(t, setup{
		schema: fmt.Sprintf(`CREATE TABLE a (id int PRIMARY KEY, v text NOT NULL);
CREATE TABLE b (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO a SELECT g, 'v0' FROM generate_series(1, 200) g;
INSERT INTO b SELECT g, 'v0' FROM generate_series(1, %d) g;`, addRows),
		rules:   addRulesA,
		tables:  "[public.a]",
		pgExtra: "  add_missing_tables: false\n",
		// The rate bound makes b's snapshot last about 6 s, under the writes.
		extra: "snapshot: {mode: never, chunk_rows: 100, max_rows_per_second: 500}\n",
	})
	t.Setenv("CHRONICLER_RULES_RELOAD", "false") // SIGHUP only
	db := e.store.client(t)
	e.startChronicler()
	e.waitLog("capture: streaming")
	pid := e.chron.Process.Pid
	wa := startTableWriter(t, e.dbURL, "a", 200, 50, false)
	wb := startTableWriter(t, e.dbURL, "b", addRows, 100, true)
	time.Sleep(2 * time.Second) // writes to b before it is captured, not a wait for a result

	cfgText, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.dir, "rules.yaml"), addRulesA+addRulesB)
	withB := strings.Replace(string(cfgText), "tables: [public.a]", "tables: [public.a, public.b]", 1)
	writeFile(t, e.cfg, withB)
	hup := func() {
		if err := e.chron.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	hup()
	e.waitLog("rule reload refused")
	e.requireLogged(`ALTER PUBLICATION \"chaos\" ADD TABLE \"public\".\"b\"`)
	e.requireLogged("add_missing_tables: true")

	// With add_missing_tables, and a setting a reload does not apply.
	added := strings.Replace(withB, "add_missing_tables: false", "add_missing_tables: true", 1)
	added = strings.Replace(added, "heartbeat_interval: 1s", "heartbeat_interval: 2s", 1)
	writeFile(t, e.cfg, added)
	before := wb.n.Load() // b's writes 0..before-1 committed before the reload
	hup()
	e.waitLog("capture: tables added to the captured set")
	after := wb.n.Load() + 1 // b's writes from here on committed after the ALTER
	e.requireLogged("need a restart")
	e.requireLogged("postgres.heartbeat_interval")
	waitUntil(t, e, 3*time.Minute, "b's snapshot done", func() bool {
		s := addedSnapshot(t, db, "public.b")
		return s != nil && s["state"] == "done"
	})

	// Removing a is refused; a's updates go on being captured (checkA).
	writeFile(t, e.cfg, strings.Replace(added, "tables: [public.a, public.b]", "tables: [public.b]", 1))
	hup()
	waitUntil(t, e, time.Minute, "the removal refused", func() bool {
		b, _ := os.ReadFile(e.logf.Name())
		return strings.Count(string(b), "rule reload refused") == 2
	})
	e.requireLogged("postgres.tables no longer lists public.a")
	time.Sleep(2 * time.Second) // more writes after the snapshot, not a wait for a result
	wa.stop(t)
	wb.stop(t)
	e.waitCaughtUp(2 * time.Minute)
	e.checkRunning()
	if e.chron.Process.Pid != pid {
		t.Fatal("chronicler was restarted")
	}
	e.stopChronicler()
	if b, _ := os.ReadFile(e.logf.Name()); strings.Count(string(b), "capture: streaming") != 1 {
		t.Errorf("\"capture: streaming\" logged %d times; want once (capture never restarted)", strings.Count(string(b), "capture: streaming"))
	}
	t.Logf("writes to b: %d before the reload, %d before it took effect, %d in all; to a: %d", before, after, wb.n.Load(), wa.n.Load())

	snapIDs := map[string]bool{}
	checkA(t, wa, rowStreams(t, db, "ta", snapIDs))
	checkB(t, wb, rowStreams(t, db, "tb", snapIDs), tableRows(t, e, "b"), before, after)
	if len(snapIDs) != 1 {
		t.Errorf("snapshot ids in the events' metadata: %v; want one (b's)", snapIDs)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkA: every update of a is stored once, in commit order.
func checkA(t *testing.T, w *tableWriter, got map[int][]rowEvent) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	bad := 0
	for id := 1; id <= w.rows; id++ {
		var want, have []string
		for _, op := range w.ops[id] {
			want = append(want, op.v)
		}
		for _, ev := range got[id] {
			have = append(have, ev.v)
		}
		if !slices.Equal(want, have) {
			if bad++; bad <= 5 {
				t.Errorf("a id %d: events %v; the committed updates were %v", id, have, want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d rows of a wrong", bad)
	}
}

// stateAfter is a row's value after its first n writes ("" and false:
// no such row), from v0 for the rows the table had before.
func stateAfter(ops []rowOp, n int, preexisting bool) (string, bool) {
	v, ok := "v0", preexisting
	for _, op := range ops[:n] {
		v, ok = op.v, op.kind != "delete"
	}
	return v, ok
}

// checkB checks b's row streams against the writes (before: writes with a
// lower number committed before the reload; after: those from it on
// committed after it took effect) and the table (final rows).
func checkB(t *testing.T, w *tableWriter, got map[int][]rowEvent, final map[int]string, before, after int64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := map[int]bool{}
	for id := 1; id <= w.rows; id++ {
		ids[id] = true
	}
	for id := range w.ops {
		ids[id] = true
	}
	for id := range got {
		ids[id] = true
	}
	bad, snaps := 0, 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for id := range ids {
		if msg := checkRow(w.ops[id], got[id], id <= w.rows, before, after); msg != "" {
			report("b id %d: %s; writes %v; events %v", id, msg, w.ops[id], got[id])
			continue
		}
		v, exists := final[id]
		evs := got[id]
		switch last := len(evs) - 1; {
		case last < 0 && exists:
			report("b id %d: no event; the table has %q", id, v)
		case last >= 0 && evs[last].kind == "delete" && exists:
			report("b id %d: last event a delete; the table has %q", id, v)
		case last >= 0 && evs[last].kind != "delete" && (!exists || evs[last].v != v):
			report("b id %d: last event shows %q; the table has %q (present %v)", id, evs[last].v, v, exists)
		}
		for _, ev := range evs {
			if ev.snapshot {
				snaps++
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d rows of b wrong", bad)
	}
	t.Logf("figure: b added under load: %d rows, %d snapshot events, %d writes to b (%d after the reload took effect), every row's stream in commit order",
		len(ids), snaps, w.n.Load(), w.n.Load()-after)
}

// checkRow checks one row's events against its writes: "" when right.
func checkRow(ops []rowOp, evs []rowEvent, preexisting bool, before, after int64) string {
	var changes []rowEvent
	snapAt, snapV, nsnap := 0, "", 0
	for _, ev := range evs {
		if ev.snapshot {
			nsnap++
			snapAt, snapV = len(changes), ev.v
			continue
		}
		changes = append(changes, ev)
	}
	switch {
	case nsnap > 1:
		return fmt.Sprintf("%d snapshot events", nsnap)
	case preexisting && nsnap == 0:
		return "no snapshot event for a row the table had before it was added"
	}
	j := len(ops) - len(changes)
	if j < 0 {
		return "more change events than writes"
	}
	for i, ev := range changes {
		op := ops[j+i]
		if ev.kind != op.kind || (op.kind != "delete" && ev.v != op.v) {
			return fmt.Sprintf("change events are not the writes' suffix (event %d %s %q, write %s %q)", i, ev.kind, ev.v, op.kind, op.v)
		}
	}
	if j > 0 && ops[j-1].seq >= after {
		return fmt.Sprintf("write %d (%s %q), committed after the reload took effect, has no event", ops[j-1].seq, ops[j-1].kind, ops[j-1].v)
	}
	if j < len(ops) && ops[j].seq < before {
		return fmt.Sprintf("write %d, committed before the reload, has an event", ops[j].seq)
	}
	if nsnap == 1 {
		if v, ok := stateAfter(ops, j+snapAt, preexisting); !ok || v != snapV {
			return fmt.Sprintf("snapshot event shows %q after %d change events; the row then was %q (present %v)", snapV, snapAt, v, ok)
		}
	}
	return ""
}
