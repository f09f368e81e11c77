package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// edges: schema and admin changes under a running chronicler (issue 20).
const edgeSchema = `CREATE TABLE items (id int PRIMARY KEY, note text);`

const edgeRules = `capture:
  - name: reads-note
    table: public.items
    on: [insert, snapshot]
    stream: {category: item, id: new.id}
    type: ItemNoted
    data: {note: new.note}
  - name: reads-id
    table: public.items
    on: [insert]
    stream: {category: seen, id: new.id}
    type: Seen
    data: {id: new.id}
`

func newEdgeEnv(t *testing.T) *env {
	return newEnvWith(t, setup{schema: edgeSchema, rules: edgeRules, tables: "[public.items]"})
}

// TestRenamedColumnDeadLettersOnlyItsRule (issue 20, item 5): after
// RENAME note TO note2 while running, the rule reading note dead-letters
// the table's inserts, naming the column, instead of storing "note": null;
// the other rule goes on; a restart runs (it used to crash-loop), and the
// same holds.
func TestRenamedColumnDeadLettersOnlyItsRule(t *testing.T) {
	e := newEdgeEnv(t)
	e.startChronicler()
	// The initial snapshot (of the empty table) is read while streaming:
	// rows written before it ends would have snapshot events too.
	e.waitLog("capture: snapshot complete")
	e.pg.Exec(t, "app", `INSERT INTO items VALUES (1, 'a')`)
	e.pg.Exec(t, "app", `ALTER TABLE items RENAME note TO note2; INSERT INTO items VALUES (2, 'b')`)
	e.waitCaughtUp(60 * time.Second)
	e.waitLog("a rule no longer fits its table's columns")
	e.stopChronicler()

	e.startChronicler()
	e.waitLog("capture: streaming")
	e.pg.Exec(t, "app", `INSERT INTO items VALUES (3, 'c')`)
	e.waitCaughtUp(60 * time.Second)
	e.checkRunning()
	e.stopChronicler()

	db := e.store.client(t)
	if got := readAll(t, db, "item-1"); len(got) != 1 || got[0].Data["note"] != "a" {
		t.Errorf("item-1: %+v; want note a", got)
	}
	for id := 2; id <= 3; id++ {
		if got := readAll(t, db, fmt.Sprintf("item-%d", id)); len(got) != 0 {
			t.Errorf("item-%d after the rename: %+v; want none", id, got)
		}
		if got := readAll(t, db, fmt.Sprintf("seen-%d", id)); len(got) != 1 {
			t.Errorf("seen-%d: %d events; want 1", id, len(got))
		}
	}
	dl := readAll(t, db, "chronicler-deadletter-"+slot)
	if len(dl) != 2 {
		t.Fatalf("dead letters: %d; want 2 (ids 2 and 3): %+v", len(dl), dl)
	}
	for i, d := range dl {
		if msg, _ := d.Data["error"].(string); d.Data["rule"] != "reads-note" || !strings.Contains(msg, "column note of public.items") {
			t.Errorf("dead letter %d: %+v; want rule reads-note naming column note", i, d.Data)
		}
	}
}

// TestRetypedColumnDeadLettersOnlyItsRule (issue 20, item 5, a type
// change): ALTER COLUMN qty TYPE text while chronicler is stopped, under a
// rule computing new.qty * 2. The restart runs (it used to exit: the rules
// did not load against the table's new types), the rule's changes are
// dead-lettered with the type problem, and the other rule goes on.
func TestRetypedColumnDeadLettersOnlyItsRule(t *testing.T) {
	e := newEnvWith(t, setup{schema: `CREATE TABLE stock (id int PRIMARY KEY, qty int NOT NULL);`, tables: "[public.stock]", rules: `capture:
  - name: doubles-qty
    table: public.stock
    on: [insert]
    stream: {category: stock, id: new.id}
    type: Doubled
    data: {twice: new.qty * 2}
  - name: reads-id
    table: public.stock
    on: [insert]
    stream: {category: seen, id: new.id}
    type: Seen
    data: {id: new.id}
`})
	e.startChronicler()
	e.waitLog("capture: snapshot complete")
	e.pg.Exec(t, "app", `INSERT INTO stock VALUES (1, 5)`)
	e.waitCaughtUp(60 * time.Second)
	e.stopChronicler()
	e.pg.Exec(t, "app", `ALTER TABLE stock ALTER COLUMN qty TYPE text; INSERT INTO stock VALUES (2, '7')`)

	e.startChronicler()
	e.waitLog("capture: streaming")
	e.pg.Exec(t, "app", `INSERT INTO stock VALUES (3, '8')`)
	e.waitCaughtUp(60 * time.Second)
	e.waitLog("a rule no longer fits its table's columns")
	e.checkRunning()
	e.stopChronicler()

	db := e.store.client(t)
	if got := readAll(t, db, "stock-1"); len(got) != 1 || fmt.Sprint(got[0].Data["twice"]) != "10" {
		t.Errorf("stock-1: %+v; want one event with twice 10", got)
	}
	for id := 1; id <= 3; id++ {
		if id > 1 {
			if got := readAll(t, db, fmt.Sprintf("stock-%d", id)); len(got) != 0 {
				t.Errorf("stock-%d after the type change: %+v; want none", id, got)
			}
		}
		if got := readAll(t, db, fmt.Sprintf("seen-%d", id)); len(got) != 1 {
			t.Errorf("seen-%d: %d events; want 1", id, len(got))
		}
	}
	dl := readAll(t, db, "chronicler-deadletter-"+slot)
	if len(dl) != 2 {
		t.Fatalf("dead letters: %d; want 2 (ids 2 and 3): %+v", len(dl), dl)
	}
	for i, d := range dl {
		msg, _ := d.Data["error"].(string)
		if d.Data["rule"] != "doubles-qty" || !strings.Contains(msg, "does not compile against the column types public.stock has now") || !strings.Contains(msg, "mismatched types") {
			t.Errorf("dead letter %d: %+v; want rule doubles-qty naming the type problem", i, d.Data)
		}
	}
}

// TestDroppedSlotWhileStoppedStopsRun (issue 20, item 1): the slot is
// dropped while chronicler is stopped; `chronicler run` exits 1 logging at
// ERROR that the slot is gone and how to go on, and creates no slot; with
// postgres.on_missing_slot: resnapshot it runs and the snapshot carries the
// row written in the gap.
func TestDroppedSlotWhileStoppedStopsRun(t *testing.T) {
	e := newEdgeEnv(t)
	e.startChronicler()
	e.waitLog("capture: snapshot complete") // before row 1: it has no snapshot event
	e.pg.Exec(t, "app", `INSERT INTO items VALUES (1, 'a')`)
	e.waitCaughtUp(60 * time.Second)
	e.stopChronicler()
	conn := e.conn()
	defer conn.Close(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := conn.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", slot)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dropping the slot: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the stopped walsender releases it
	}
	e.pg.Exec(t, "app", `INSERT INTO items VALUES (2, 'in the gap')`)

	e.startChronicler()
	select {
	case err := <-e.exited:
		e.chron = nil
		if err == nil || !strings.Contains(err.Error(), "exit status 1") {
			t.Fatalf("chronicler run with its slot dropped exited %v; want exit status 1", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("chronicler run with its slot dropped did not stop within 60s")
	}
	b, err := os.ReadFile(e.logf.Name())
	if err != nil {
		t.Fatal(err)
	}
	log := string(b[e.startOff:])
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, `replication slot "`+slot+`" no longer exists`) ||
		!strings.Contains(log, "postgres.on_missing_slot: resnapshot") {
		t.Fatalf("log of the refused start does not say at ERROR that the slot is gone and how to go on:\n%s", log)
	}
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d slots after the refusal (%v); want none", n, err)
	}

	cfg, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.cfg, []byte(strings.Replace(string(cfg), "postgres:\n", "postgres:\n  on_missing_slot: resnapshot\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.startChronicler()
	e.waitLog("capture: streaming")
	// The new snapshot is read while streaming: caught up is not enough.
	// Its last chunk is acknowledged (stored) before it logs complete.
	e.waitLog("capture: snapshot complete")
	e.waitCaughtUp(60 * time.Second)
	e.stopChronicler()
	db := e.store.client(t)
	got := readAll(t, db, "item-2")
	if len(got) != 1 || got[0].Data["note"] != "in the gap" || got[0].Meta["op"] != "snapshot" {
		t.Fatalf("item-2: %+v; want the gap's row from the new snapshot", got)
	}
}
