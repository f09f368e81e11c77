package capture_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

const testSlot = "unit"

// Rules: every item insert → item-<id>; the "audit" rule fails when note
// is "bad" (empty stream id) and otherwise writes audit-<id>.
const testRules = `capture:
  - name: item-added
    table: public.items
    on: [insert]
    stream: {category: item, id: new.id}
    type: ItemAdded
    data: {id: new.id, note: new.note}
  - name: audit
    table: public.items
    on: [insert]
    stream: {category: audit, id: 'new.note == "bad" ? "" : string(new.id)'}
    type: Audited
    data: {id: new.id}
  - name: item-updated
    table: public.items
    on: [update]
    stream: {category: item, id: new.id}
    type: ItemUpdated
    data: {id: new.id, body: new.body}
`

// harness runs a Pipeline on a real appender and an in-process store.
type harness struct {
	t      *testing.T
	db     *esdb.Client
	pipe   *capture.Pipeline
	app    *store.Appender
	cancel context.CancelFunc
	done   chan error

	mu    sync.Mutex
	acked []contract.LSN
	early []string // acks made before a progress marker covered them
}

func newHarness(t *testing.T, db *testDB, cfg capture.Config, st store.Config) *harness {
	t.Helper()
	rules, err := cfg.Rules, error(nil)
	if rules == nil {
		if rules, err = mapping.LoadBytes("rules.yaml", []byte(testRules), mapping.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{t: t, db: db.Client, done: make(chan error, 2)}
	st.Slot = testSlot
	st.Logger = slog.New(slog.DiscardHandler)
	st.OnDurable = func(l contract.LSN) { h.pipe.Durable(l) }
	h.app, err = store.New(db.store, st)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Slot, cfg.Rules, cfg.Logger = testSlot, rules, slog.New(slog.DiscardHandler)
	cfg.Ack = func(l contract.LSN) {
		// The contract: a position is confirmed only once a progress
		// marker covering it is stored.
		marker := lastMarker(t, db.Client)
		h.mu.Lock()
		defer h.mu.Unlock()
		if marker < l {
			h.early = append(h.early, fmt.Sprintf("ack %s with the last marker at %s", l, marker))
		}
		h.acked = append(h.acked, l)
	}
	h.pipe, err = capture.NewPipeline(cfg, h.app, db.store, h.app.Stats)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.app.Run(ctx) }()
	go func() { h.done <- h.pipe.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	<-h.done
	h.cancel = nil
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.early) > 0 {
		h.t.Errorf("positions confirmed before their progress marker was stored: %v", h.early)
	}
}

func lastMarker(t *testing.T, db *esdb.Client) contract.LSN {
	p := read(t, db, "chronicler-progress-"+testSlot)
	if len(p) == 0 {
		return 0
	}
	l, err := contract.ParseLSN(p[len(p)-1].Data["durableLsn"].(string))
	if err != nil {
		t.Errorf("progress marker: %v", err)
	}
	return l
}

func (h *harness) lastAck() contract.LSN {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.acked) == 0 {
		return 0
	}
	return h.acked[len(h.acked)-1]
}

func (h *harness) waitAck(lsn contract.LSN) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.lastAck() < lsn {
		if time.Now().After(deadline) {
			h.t.Fatalf("ack %s not reached (last %s)", lsn, h.lastAck())
		}
		time.Sleep(5 * time.Millisecond) // polling interval, with a deadline
	}
}

// feed delivers a transaction of item rows: inserts for notes, in order.
func (h *harness) feed(lsn contract.LSN, firstID int, notes ...string) error {
	ctx := context.Background()
	tx := contract.Tx{XID: uint32(lsn), CommitLSN: lsn, CommitTime: time.Unix(1700000000, 0).UTC()}
	if err := h.pipe.Begin(ctx, tx); err != nil {
		return err
	}
	for i, n := range notes {
		ch := &contract.Change{Op: contract.OpInsert, Database: "app", Schema: "public", Table: "items", Key: []string{"id"},
			New: map[string]any{"id": int64(firstID + i), "note": n}, Tx: tx, LSN: lsn - 100 + contract.LSN(i), Ordinal: uint64(i)}
		if err := h.pipe.Change(ctx, ch); err != nil {
			return err
		}
	}
	return h.pipe.Commit(ctx, tx)
}

type ev struct {
	Type string
	Data map[string]any
	Meta map[string]any
}

func read(t *testing.T, db *esdb.Client, stream string) []ev {
	t.Helper()
	rs, err := db.ReadStream(context.Background(), stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 1<<20)
	if err != nil {
		t.Fatalf("reading %s: %v", stream, err)
	}
	defer rs.Close()
	var out []ev
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		var ee *esdb.Error
		if errors.As(err, &ee) && ee.Code() == esdb.ErrorCodeResourceNotFound {
			return nil
		}
		if err != nil {
			t.Fatalf("reading %s: %v", stream, err)
		}
		x := ev{Type: e.Event.EventType}
		if err := json.Unmarshal(e.Event.Data, &x.Data); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(e.Event.UserMetadata, &x.Meta)
		out = append(out, x)
	}
}

// testDB is one store server seen through the official client (the
// test's reads and foreign writes) and through the product's store client.
type testDB struct {
	*esdb.Client
	store *store.Client
}

func newDB(t *testing.T) *testDB {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	return &testDB{Client: kurrentdbtest.Client(t, srv.URL()), store: kurrentdbtest.Store(t, srv.URL())}
}

// TestRuleFailureIsDeadLetteredAndTheLineGoesOn: a change one rule fails
// on yields the other rule's event, one dead letter with the raw change,
// rule, field and error, and later changes are still stored; the LSN is
// acknowledged and a progress marker written.
func TestRuleFailureIsDeadLetteredAndTheLineGoesOn(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{})
	if err := h.feed(0x1000, 1, "ok", "bad", "ok"); err != nil {
		t.Fatal(err)
	}
	if err := h.feed(0x2000, 4, "bad"); err != nil {
		t.Fatal(err)
	}
	h.waitAck(0x2000)

	for id := 1; id <= 4; id++ {
		if got := read(t, db.Client, fmt.Sprintf("item-%d", id)); len(got) != 1 || got[0].Type != "ItemAdded" {
			t.Errorf("item-%d: %+v, want one ItemAdded", id, got)
		}
	}
	for id, want := range map[int]int{1: 1, 2: 0, 3: 1, 4: 0} {
		if got := read(t, db.Client, fmt.Sprintf("audit-%d", id)); len(got) != want {
			t.Errorf("audit-%d: %d events, want %d", id, len(got), want)
		}
	}
	dl := read(t, db.Client, "chronicler-deadletter-"+testSlot)
	if len(dl) != 2 {
		t.Fatalf("dead letters: %d, want 2: %+v", len(dl), dl)
	}
	for i, wantID := range []float64{2, 4} {
		d := dl[i]
		ch := d.Data["change"].(map[string]any)
		if d.Type != contract.DeadLetterType || d.Data["rule"] != "audit" || d.Data["field"] != "stream.id" || d.Data["reason"] != "rule" ||
			ch["new"].(map[string]any)["id"] != wantID || ch["table"] != "items" || ch["op"] != "insert" || d.Data["error"] == "" {
			t.Errorf("dead letter %d: %+v", i, d.Data)
		}
		if d.Meta["rule"] != "audit" || d.Meta["slot"] != testSlot || float64(contract.DeadLetterIndex) != d.Meta["index"] {
			t.Errorf("dead letter %d metadata: %+v", i, d.Meta)
		}
	}
	st := h.pipe.Stats()
	if st.Mapped != 2 || st.DeadLettered != 2 || st.Unmatched != 0 || st.Events != 6 {
		t.Errorf("stats %+v, want mapped 2, dead-lettered 2, events 6", st)
	}
	waitProgress(t, db.Client, 0x2000)
}

func waitProgress(t *testing.T, db *esdb.Client, lsn contract.LSN) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p := read(t, db, "chronicler-progress-"+testSlot)
		if len(p) > 0 {
			last := p[len(p)-1]
			if last.Type != contract.ProgressType || last.Data["slot"] != testSlot {
				t.Fatalf("progress marker %+v", last)
			}
			if got, _ := contract.ParseLSN(last.Data["durableLsn"].(string)); got >= lsn {
				if got != lsn {
					t.Fatalf("progress marker %s is past the durable LSN %s", got, lsn)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress marker at %s: %+v", lsn, p)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, with a deadline
	}
}

// TestRedeliveryAfterRestartStoresOnce: a new pipeline (a restarted
// process) receiving the same transactions again, events and dead letters
// included, adds nothing; the next transaction is appended after them.
func TestRedeliveryAfterRestartStoresOnce(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{})
	if err := h.feed(0x1000, 1, "ok", "bad"); err != nil {
		t.Fatal(err)
	}
	h.waitAck(0x1000)
	h.stop()
	h2 := newHarness(t, db, capture.Config{}, store.Config{})
	if err := h2.feed(0x1000, 1, "ok", "bad"); err != nil {
		t.Fatal(err)
	}
	if err := h2.feed(0x2000, 3, "bad"); err != nil {
		t.Fatal(err)
	}
	h2.waitAck(0x2000)
	if got := read(t, db.Client, "item-1"); len(got) != 1 {
		t.Errorf("item-1 has %d events after redelivery, want 1", len(got))
	}
	dl := read(t, db.Client, "chronicler-deadletter-"+testSlot)
	if len(dl) != 2 {
		t.Fatalf("dead-letter stream has %d events, want 2 (one per bad row)", len(dl))
	}
	for i, id := range []float64{2, 3} {
		if got := dl[i].Data["change"].(map[string]any)["new"].(map[string]any)["id"]; got != id {
			t.Errorf("dead letter %d is for id %v, want %v", i, got, id)
		}
	}
}

// TestStopPolicy: under on_error stop the failing change returns a
// *StopError naming the rule, and the transaction is never acknowledged.
func TestStopPolicy(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{OnError: capture.OnErrorStop}, store.Config{})
	if err := h.feed(0x1000, 1, "ok"); err != nil {
		t.Fatal(err)
	}
	err := h.feed(0x2000, 2, "bad")
	var se *capture.StopError
	if !errors.As(err, &se) || se.Rule != "audit" || se.Table != "public.items" {
		t.Fatalf("got %v, want a *StopError for rule audit on public.items", err)
	}
	var ee *mapping.EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("StopError does not unwrap to the *mapping.EvalError: %v", err)
	}
	h.waitAck(0x1000)
	if got := h.lastAck(); got != 0x1000 {
		t.Fatalf("acknowledged %s, want 0x1000 only", got)
	}
	if dl := read(t, db.Client, "chronicler-deadletter-"+testSlot); len(dl) != 0 {
		t.Fatalf("dead letters written under on_error stop: %d", len(dl))
	}
}

// TestTooLargeEventIsDeadLettered: an event over the append limit becomes
// a dead letter (reason too_large, the row dropped as it is what is too
// large), and the change's other events are stored.
func TestTooLargeEventIsDeadLettered(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{MaxBatchBytes: 4096, MaxPendingBytes: 1 << 20})
	ctx := context.Background()
	tx := contract.Tx{XID: 9, CommitLSN: 0x3000}
	big := strings.Repeat("x", 10000)
	for _, step := range []func() error{
		func() error { return h.pipe.Begin(ctx, tx) },
		func() error {
			return h.pipe.Change(ctx, &contract.Change{Op: contract.OpUpdate, Schema: "public", Table: "items", Key: []string{"id"},
				New: map[string]any{"id": int64(7), "body": big, "note": contract.Unchanged}, Tx: tx, Ordinal: 0})
		},
		func() error {
			return h.pipe.Change(ctx, &contract.Change{Op: contract.OpInsert, Schema: "public", Table: "items", Key: []string{"id"},
				New: map[string]any{"id": int64(8), "note": "ok"}, Tx: tx, Ordinal: 1})
		},
		func() error { return h.pipe.Commit(ctx, tx) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	h.waitAck(0x3000)
	if got := read(t, db.Client, "item-7"); len(got) != 0 {
		t.Fatalf("item-7 holds %d events; the oversized event must not be stored", len(got))
	}
	if got := read(t, db.Client, "item-8"); len(got) != 1 {
		t.Fatalf("item-8 holds %d events, want 1", len(got))
	}
	dl := read(t, db.Client, "chronicler-deadletter-"+testSlot)
	if len(dl) != 1 || dl[0].Data["reason"] != "too_large" || dl[0].Data["rule"] != "item-updated" || dl[0].Data["truncated"] != true {
		t.Fatalf("dead letters: %+v", dl)
	}
}

// TestUnchangedIsVisibleInDeadLetters: the raw change of a dead letter
// shows an unchanged TOAST value as {"$unchanged":true}, not null.
func TestUnchangedIsVisibleInDeadLetters(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{})
	ctx := context.Background()
	tx := contract.Tx{XID: 9, CommitLSN: 0x4000}
	if err := h.pipe.Begin(ctx, tx); err != nil {
		t.Fatal(err)
	}
	// item-updated's data reads new.body, which is unchanged: the rule's
	// default unchanged policy (error) fails it.
	if err := h.pipe.Change(ctx, &contract.Change{Op: contract.OpUpdate, Schema: "public", Table: "items", Key: []string{"id"},
		New: map[string]any{"id": int64(7), "body": contract.Unchanged}, Tx: tx}); err != nil {
		t.Fatal(err)
	}
	if err := h.pipe.Commit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	h.waitAck(0x4000)
	dl := read(t, db.Client, "chronicler-deadletter-"+testSlot)
	if len(dl) != 1 {
		t.Fatalf("dead letters: %+v", dl)
	}
	body := dl[0].Data["change"].(map[string]any)["new"].(map[string]any)["body"]
	if m, ok := body.(map[string]any); !ok || m["$unchanged"] != true {
		t.Fatalf("unchanged value in the dead letter is %#v, want {\"$unchanged\":true}", body)
	}
}

func TestConfigErrorsAreAllReported(t *testing.T) {
	_, err := capture.NewPipeline(capture.Config{OnError: "shrug", DeadLetterStream: contract.ProgressStream("")}, nil, nil, nil)
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *capture.ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("%T is not a *ConfigError", e)
		}
		fields = append(fields, ce.Field)
	}
	want := "slot rules ack deadletter.stream on_error appender store"
	if strings.Join(fields, " ") != want {
		t.Fatalf("fields %v, want %s", fields, want)
	}
}

// TestProgressMarkersNeverGoBackwards: a restarted pipeline re-delivered
// transactions below the last marker confirms them without writing a lower
// marker, and the next marker is above.
func TestProgressMarkersNeverGoBackwards(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{})
	for i, lsn := range []contract.LSN{0x1000, 0x2000} {
		if err := h.feed(lsn, 10*i, "ok"); err != nil {
			t.Fatal(err)
		}
	}
	h.waitAck(0x2000)
	h.stop()
	h2 := newHarness(t, db, capture.Config{}, store.Config{})
	if err := h2.feed(0x1000, 0, "ok"); err != nil { // re-delivered
		t.Fatal(err)
	}
	h2.waitAck(0x1000)
	if err := h2.feed(0x3000, 30, "ok"); err != nil {
		t.Fatal(err)
	}
	h2.waitAck(0x3000)
	var prev contract.LSN
	markers := read(t, db.Client, "chronicler-progress-"+testSlot)
	for i, m := range markers {
		l, err := contract.ParseLSN(m.Data["durableLsn"].(string))
		if err != nil || l < prev {
			t.Fatalf("marker %d at %s after %s (err %v): markers went backwards", i, l, prev, err)
		}
		prev = l
	}
	if prev != 0x3000 {
		t.Fatalf("last marker %s, want 0/3000", prev)
	}
}

// TestProgressMarkersNeverGoBackwardsWithTwoWriters: a marker appended by
// another writer after this pipeline read the stream (an instance that
// lost the HA lock and is still winding down) is never followed by a lower
// one: durable LSNs below it are confirmed without a marker, and the next
// marker is written above it, after the revision it took.
func TestProgressMarkersNeverGoBackwardsWithTwoWriters(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{})
	if err := h.feed(0x1000, 0, "ok"); err != nil {
		t.Fatal(err)
	}
	h.waitAck(0x1000)
	waitProgress(t, db.Client, 0x1000)
	// The other instance's marker, at a higher LSN.
	data := contract.EncodeProgress(contract.Progress{Slot: testSlot, DurableLSN: 0x5000})
	if _, err := db.AppendToStream(context.Background(), "chronicler-progress-"+testSlot, esdb.AppendToStreamOptions{},
		esdb.EventData{EventType: contract.ProgressType, ContentType: esdb.ContentTypeJson, Data: data}); err != nil {
		t.Fatal(err)
	}
	if err := h.feed(0x2000, 20, "ok"); err != nil {
		t.Fatal(err)
	}
	h.waitAck(0x2000)
	if err := h.feed(0x6000, 60, "ok"); err != nil {
		t.Fatal(err)
	}
	h.waitAck(0x6000)
	waitProgress(t, db.Client, 0x6000)
	var got []string
	for _, m := range read(t, db.Client, "chronicler-progress-"+testSlot) {
		got = append(got, m.Data["durableLsn"].(string))
	}
	if want := "0/1000 0/5000 0/6000"; strings.Join(got, " ") != want {
		t.Fatalf("progress markers %v, want %s", got, want)
	}
}

// TestStoreRefusalIsDeadLettered: an event the store refuses as too large
// (here its per-event limit, MaxAppendEventSize, which Chronicler cannot know
// beforehand) becomes a too_large dead letter like one over the append
// limit, on either append path: the store's refusal is answered after
// the change was handed on, so the dead letter carries the change's
// position, table, operation and rule from the event's metadata, not the
// row (truncated); the change's other events are stored, the transaction is
// acknowledged, and the next oversized event is refused and dead-lettered
// at once (keeping the row's key values), in order, never retried.
func TestStoreRefusalIsDeadLettered(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "Append", true: "BatchAppend"}[batch], func(t *testing.T) {
			srv := kurrentdbtest.Start(t, kurrentdb.Options{MaxAppendEventSize: 3000})
			db := &testDB{Client: kurrentdbtest.Client(t, srv.URL()), store: kurrentdbtest.Store(t, srv.URL())}
			h := newHarness(t, db, capture.Config{}, store.Config{BatchAppend: batch})
			big := strings.Repeat("x", 4000)
			if err := h.feed(0x5000, 7, big); err != nil {
				t.Fatal(err)
			}
			h.waitAck(0x5000)
			if err := h.feed(0x6000, 8, big, "ok"); err != nil {
				t.Fatal(err)
			}
			h.waitAck(0x6000)
			for stream, want := range map[string]int{"item-7": 0, "audit-7": 1, "item-8": 0, "audit-8": 1, "item-9": 1, "audit-9": 1} {
				if got := read(t, db.Client, stream); len(got) != want {
					t.Fatalf("%s holds %d events, want %d", stream, len(got), want)
				}
			}
			dl := read(t, db.Client, "chronicler-deadletter-"+testSlot)
			if len(dl) != 2 {
				t.Fatalf("dead letters: %+v, want 2", dl)
			}
			for i, d := range dl {
				ch, _ := d.Data["change"].(map[string]any)
				if d.Data["reason"] != "too_large" || d.Data["rule"] != "item-added" || d.Data["truncated"] != true ||
					ch["table"] != "items" || ch["schema"] != "public" || ch["op"] != "insert" ||
					!strings.Contains(fmt.Sprint(d.Data["error"]), "maximum append event size of 3000") {
					t.Fatalf("dead letter %d = %+v", i, d.Data)
				}
			}
			// The first was refused by the store after the change was handed
			// on: no row. The second was refused by Add, which knew the
			// limit by then, with the change at hand: the key values only.
			if ch := dl[0].Data["change"].(map[string]any); ch["new"] != nil {
				t.Errorf("the store-refused event's dead letter holds a row: %v", ch["new"])
			}
			if ch := dl[1].Data["change"].(map[string]any); fmt.Sprint(ch["new"]) != "map[id:8]" {
				t.Errorf("the dead letter of the event refused at once holds new = %v, want the key only, map[id:8]", ch["new"])
			}
			if ch := dl[0].Data["change"].(map[string]any); ch["commitLsn"] != "0/5000" || ch["database"] != "app" {
				t.Fatalf("the refused event's dead letter names %v, want the change at 0/5000 in app", ch)
			}
			if n := h.pipe.Stats().DeadLettered; n != 2 {
				t.Fatalf("%d dead letters counted, want 2", n)
			}
		})
	}
}

// TestRenamedColumnIsDeadLetteredByRule (issue 20, item 5): after a column
// a rule reads is renamed (the changes' rows carry note2, not note), that
// rule's changes are dead-lettered naming the column, instead of storing
// "note": null, while the other rule goes on; a restart loads the rules
// against the renamed table (which fails without capture's Drift) and the
// same holds.
func TestRenamedColumnIsDeadLetteredByRule(t *testing.T) {
	const rules = `capture:
  - name: reads-note
    table: public.items
    on: [insert]
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
	catalogue := func(note string) mapping.Catalogue {
		return mapping.Catalogue{"public.items": {Columns: []mapping.Column{{Name: "id", Type: "int8", NotNull: true}, {Name: note, Type: "text"}}}}
	}
	load := func(note string) *mapping.RuleSet {
		rs, err := mapping.LoadBytes("rules.yaml", []byte(rules), mapping.Options{Catalogue: catalogue(note), Drift: true})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	feed := func(h *harness, lsn contract.LSN, id int64, col string) {
		t.Helper()
		ctx := context.Background()
		tx := contract.Tx{XID: uint32(lsn), CommitLSN: lsn, CommitTime: time.Unix(1700000000, 0).UTC()}
		ch := &contract.Change{Op: contract.OpInsert, Database: "app", Schema: "public", Table: "items", Key: []string{"id"},
			New: map[string]any{"id": id, col: "x"}, Tx: tx, LSN: lsn - 1}
		if err := h.pipe.Begin(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if err := h.pipe.Change(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if err := h.pipe.Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	db := newDB(t)
	h := newHarness(t, db, capture.Config{Rules: load("note")}, store.Config{})
	feed(h, 0x1000, 1, "note")
	feed(h, 0x2000, 2, "note2") // ALTER TABLE items RENAME note TO note2
	feed(h, 0x3000, 3, "note2")
	h.waitAck(0x3000)
	h.stop()
	if _, err := mapping.LoadBytes("rules.yaml", []byte(rules), mapping.Options{Catalogue: catalogue("note2")}); err == nil {
		t.Fatal("rules reading note loaded against the renamed table without Drift")
	}
	h = newHarness(t, db, capture.Config{Rules: load("note2")}, store.Config{}) // a restart
	feed(h, 0x4000, 4, "note2")
	h.waitAck(0x4000)

	if got := read(t, db.Client, "item-1"); len(got) != 1 || got[0].Data["note"] != "x" {
		t.Errorf("item-1: %+v; want one event with note x", got)
	}
	for id := 2; id <= 4; id++ {
		if got := read(t, db.Client, fmt.Sprintf("item-%d", id)); len(got) != 0 {
			t.Errorf("item-%d after the rename: %+v; want no event (the rule reads note, which the table no longer has)", id, got)
		}
		if got := read(t, db.Client, fmt.Sprintf("seen-%d", id)); len(got) != 1 {
			t.Errorf("seen-%d: %d events; want 1 (reads-id is not broken)", id, len(got))
		}
	}
	dl := read(t, db.Client, "chronicler-deadletter-"+testSlot)
	if len(dl) != 3 {
		t.Fatalf("dead letters: %d, want 3 (changes 2, 3, 4): %+v", len(dl), dl)
	}
	for i, d := range dl {
		msg, _ := d.Data["error"].(string)
		if d.Data["rule"] != "reads-note" || d.Data["reason"] != "rule" || !strings.Contains(msg, "renamed or dropped") ||
			!strings.Contains(msg, "column note of public.items") || !strings.Contains(msg, "rules.yaml:7:") {
			t.Errorf("dead letter %d: %+v; want rule reads-note, naming column note and where the rule reads it", i, d.Data)
		}
	}
}

// TestProgressMarkersAreSpaced: a steady stream of small transactions gets
// at most one marker per 10 ms (the writer's rounds start at least that far
// apart, so n markers take (n-1) x 10 ms; before, about one marker per
// transaction), and the last marker is still the last durable LSN, every
// one confirmed after its marker.
func TestProgressMarkersAreSpaced(t *testing.T) {
	db := newDB(t)
	h := newHarness(t, db, capture.Config{}, store.Config{})
	const txs = 100
	began := time.Now()
	var last contract.LSN
	for i := range txs {
		last = contract.LSN(0x1000 * (i + 1))
		if err := h.feed(last, i, "ok"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // a steady rate, not a burst the appender coalesces
	}
	h.waitAck(last)
	elapsed := time.Since(began)
	h.stop()
	markers := read(t, db.Client, "chronicler-progress-"+testSlot)
	if most := int(elapsed/(10*time.Millisecond)) + 1; len(markers) > most {
		t.Fatalf("%d markers for %d transactions in %s; want at most %d (one per 10 ms)", len(markers), txs, elapsed, most)
	}
	if got := lastMarker(t, db.Client); got != last {
		t.Fatalf("last marker %s; want %s", got, last)
	}
}
