package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

const partitionDDL = `
CREATE TABLE t_part (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE t_part_eu PARTITION OF t_part FOR VALUES IN ('eu');
CREATE TABLE t_part_us PARTITION OF t_part FOR VALUES IN ('us');
INSERT INTO t_part VALUES (1, 'eu', 'a'), (2, 'us', 'b');`

// TestPartitionedTableIsCapturedUnderItsName (issue 20, item 4): listing a
// partitioned table captures its partitions' rows and changes under the
// table's own name (so rules on public.t_part fire): capture creates the
// publication with publish_via_partition_root, and accepts it after a
// restart. A publication without the option is refused with a fix that
// works (SET, not ADD TABLE of a member), and once it is applied the
// changes come under the table's name.
func TestPartitionedTableIsCapturedUnderItsName(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", partitionDDL)
	conn := pg.Connect(t, "postgres")

	cfg := baseConfig(pg, "postgres", "t_part")
	sink := newMemSink()
	r := startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "the snapshot of t_part", func() bool { return len(sink.changes()) >= 2 })
	waitForSlotActive(t, pg, "chron")
	pg.Exec(t, "postgres", `INSERT INTO t_part VALUES (3, 'us', 'c'); UPDATE t_part SET v = 'a2' WHERE id = 1; DELETE FROM t_part WHERE id = 2;`)
	waitFor(t, 30*time.Second, "3 changes to t_part's partitions", func() bool { return len(sink.changes()) >= 5 })
	for i, c := range sink.changes() {
		if c.Table != "t_part" || c.Schema != "public" || !slices.Equal(c.Key, []string{"id", "region"}) {
			t.Fatalf("change %d (%s) names %s.%s, key %v; want public.t_part, key [id region]", i, c.Op, c.Schema, c.Table, c.Key)
		}
	}
	var viaRoot bool
	if err := conn.QueryRow(t.Context(), "SELECT pubviaroot FROM pg_publication WHERE pubname = 'chron_pub'").Scan(&viaRoot); err != nil || !viaRoot {
		t.Fatalf("publication chron_pub: pubviaroot %v (%v); want true", viaRoot, err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	// A restart accepts the publication it created.
	sink = newMemSink()
	startSource(t, cfg, sink)
	waitForSlotActive(t, pg, "chron")
	pg.Exec(t, "postgres", `INSERT INTO t_part VALUES (4, 'eu', 'd')`)
	// The restart reads the table again (the memSink keeps no snapshot
	// state), so snapshot rows may come after the insert: look for it.
	waitFor(t, 30*time.Second, "the insert after the restart", func() bool {
		return slices.ContainsFunc(sink.changes(), func(c *contract.Change) bool {
			return c.Op == contract.OpInsert && c.New["id"] == int64(4)
		})
	})

	// A publication made without publish_via_partition_root (as capture
	// made it before) is refused, naming the fix; the fix works.
	pg.Exec(t, "postgres", `CREATE PUBLICATION legacy FOR TABLE t_part`)
	legacy := baseConfig(pg, "postgres", "t_part")
	legacy.Slot, legacy.Publication = "legacy", "legacy"
	var m *PublicationMismatchError
	if err := runOnce(t, legacy); !errors.As(err, &m) || !slices.Equal(m.LeafNames, []string{"public.t_part"}) || len(m.Missing) > 0 || len(m.Extra) > 0 {
		t.Fatalf("Run on publication legacy = %v; want a *PublicationMismatchError naming public.t_part's partitions only", err)
	}
	c, err := Connect(t.Context(), ConnSettings{URL: pg.DatabaseURL("postgres")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(t.Context())
	srv, _ := c.ReadServer(t.Context())
	tp, _ := c.ReadTable(t.Context(), "public.t_part", false)
	mm, _ := c.ComparePublication(t.Context(), "legacy", []string{"public.t_part"})
	plan := CheckPublication(PublicationCheck{Publication: "legacy", Tables: []string{"public.t_part"}, Server: srv, Existing: []Table{tp}}, mm)
	if plan.Finding.Verdict != Fail || !strings.Contains(plan.Finding.Fix, "SET (publish_via_partition_root = true)") || strings.Contains(plan.Finding.Fix, "ADD TABLE") {
		t.Fatalf("check of publication legacy = %+v; want Fail with the SET fix only", plan.Finding)
	}
	pg.Exec(t, "postgres", strings.TrimSuffix(plan.Finding.Fix, ";"))
	sink = newMemSink()
	startSource(t, legacy, sink)
	waitFor(t, 30*time.Second, "legacy's snapshot", func() bool { return len(sink.changes()) >= 3 })
	for i, c := range sink.changes() {
		if c.Table != "t_part" {
			t.Fatalf("after the fix, change %d names %s; want t_part", i, c.Table)
		}
	}
}

// TestPartitionsWithoutReplicaIdentityAreRefused: a partitioned table's
// REPLICA IDENTITY FULL does not reach its partitions, and Postgres refuses
// UPDATEs on a published partition without one. Capture reads the
// partitions, refuses, names them with the fix, and publishes nothing: the
// application's UPDATE still works.
func TestPartitionsWithoutReplicaIdentityAreRefused(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE nk (id int, region text, v text) PARTITION BY LIST (region);
CREATE TABLE nk_eu PARTITION OF nk FOR VALUES IN ('eu');
ALTER TABLE nk REPLICA IDENTITY FULL;
INSERT INTO nk VALUES (1, 'eu', 'a');`)
	cfg := baseConfig(pg, "postgres", "nk")
	var ri *ReplicaIdentityError
	if err := runOnce(t, cfg); !errors.As(err, &ri) || ri.Table != "public.nk" || !slices.Equal(ri.Partitions, []string{"public.nk_eu"}) {
		t.Fatalf("Run = %v; want a *ReplicaIdentityError naming partition public.nk_eu", err)
	}
	pg.Exec(t, "postgres", `UPDATE nk SET v = 'b' WHERE id = 1`) // fails if nk was published
	tb, err := readTableFor(t, pg, "public.nk")
	if err != nil {
		t.Fatal(err)
	}
	f := CheckReplicaIdentity(tb, nil)
	if f.Verdict != Fail || f.Fix != `ALTER TABLE "public"."nk_eu" REPLICA IDENTITY FULL; (or add a primary key)` {
		t.Fatalf("finding %+v; want Fail with ALTER TABLE nk_eu REPLICA IDENTITY FULL", f)
	}
	pg.Exec(t, "postgres", strings.TrimSuffix(strings.TrimSuffix(f.Fix, " (or add a primary key)"), ";"))
	sink := newMemSink()
	startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "the snapshot after the fix", func() bool { return len(sink.changes()) >= 1 })
}

func readTableFor(t *testing.T, pg *stack.Postgres, name string) (Table, error) {
	t.Helper()
	c, err := Connect(t.Context(), ConnSettings{URL: pg.DatabaseURL("postgres")})
	if err != nil {
		return Table{}, err
	}
	defer c.Close(t.Context())
	return c.ReadTable(t.Context(), name, false)
}

// TestGeneratedColumnsAreNamedAndLeftOut (issue 20, item 7): pgoutput on
// Postgres 14-17 does not send generated columns, so capture warns naming
// them, and leaves them out of the snapshot too: every event of the table
// has the same columns, snapshot or stream.
func TestGeneratedColumnsAreNamedAndLeftOut(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t, stack.WithPostgresVersion(17)) // 18 sends STORED ones: TestStoredGeneratedColumnsCapturedOnPostgres18
	pg.Exec(t, "postgres", `CREATE TABLE g (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED);
INSERT INTO g (id, a) VALUES (1, 10);`)
	sink := newMemSink()
	r := startSource(t, baseConfig(pg, "postgres", "g"), sink)
	waitFor(t, 30*time.Second, "the snapshot", func() bool { return len(sink.changes()) >= 1 })
	waitForSlotActive(t, pg, "chron")
	pg.Exec(t, "postgres", `INSERT INTO g (id, a) VALUES (2, 20)`)
	waitFor(t, 30*time.Second, "the insert", func() bool { return len(sink.changes()) >= 2 })
	for _, c := range sink.changes() {
		if want := map[string]any{"id": c.New["id"], "a": c.New["a"]}; !reflect.DeepEqual(c.New, want) || c.New["a"] == nil {
			t.Errorf("%s change: %v; want id and a only (twice is generated)", c.Op, c.New)
		}
	}
	if w := r.src.Warnings(); !slices.ContainsFunc(w, func(s string) bool {
		return strings.HasPrefix(s, "generated columns public.g: twice not captured")
	}) {
		t.Errorf("warnings %q; want one naming the generated column twice", w)
	}
}

// TestStoredGeneratedColumnsCapturedOnPostgres18 (issue 20, item 7): on
// Postgres 18 capture creates its publication with
// publish_generated_columns = stored, so a STORED generated column is
// captured like any other, in the snapshot and in the stream alike, while a
// VIRTUAL one (never published) is left out of both and named in a
// warning. A publication created without the option leaves the STORED one
// out too, and the check names it with the fix.
func TestStoredGeneratedColumnsCapturedOnPostgres18(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t, stack.WithPostgresVersion(18))
	pg.Exec(t, "postgres", `CREATE TABLE g (id int PRIMARY KEY, a int,
  twice int GENERATED ALWAYS AS (a * 2) STORED, half int GENERATED ALWAYS AS (a / 2) VIRTUAL);
INSERT INTO g (id, a) VALUES (1, 10);`)
	sink := newMemSink()
	r := startSource(t, baseConfig(pg, "postgres", "g"), sink)
	waitFor(t, 30*time.Second, "the snapshot", func() bool { return len(sink.changes()) >= 1 })
	waitForSlotActive(t, pg, "chron")
	pg.Exec(t, "postgres", `INSERT INTO g (id, a) VALUES (2, 20)`)
	waitFor(t, 30*time.Second, "the insert", func() bool { return len(sink.changes()) >= 2 })
	ops := map[contract.Op]bool{}
	for _, c := range sink.changes() {
		ops[c.Op] = true
		a, _ := c.New["a"].(int64)
		if want := map[string]any{"id": c.New["id"], "a": a, "twice": 2 * a}; a == 0 || !reflect.DeepEqual(c.New, want) {
			t.Errorf("%s change: %v; want id, a and twice = 2a (half is VIRTUAL: never published)", c.Op, c.New)
		}
	}
	if !ops[contract.OpSnapshot] || !ops[contract.OpInsert] {
		t.Errorf("operations %v; want a snapshot row and a streamed insert", ops)
	}
	w := r.src.Warnings()
	if !slices.ContainsFunc(w, func(s string) bool {
		return strings.HasPrefix(s, "generated columns public.g: half not captured: Postgres never publishes VIRTUAL generated columns")
	}) {
		t.Errorf("warnings %q; want one naming half alone (VIRTUAL)", w)
	}
	c, err := Connect(t.Context(), ConnSettings{URL: pg.DatabaseURL("postgres")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(t.Context())
	var gen string
	if err := c.pg.QueryRow(t.Context(), "SELECT pubgencols::text FROM pg_publication WHERE pubname = 'chron_pub'").Scan(&gen); err != nil || gen != "s" {
		t.Errorf("chron_pub pubgencols = %q (%v); want s", gen, err)
	}

	// A publication made without the option: STORED ones are left out too.
	pg.Exec(t, "postgres", `CREATE PUBLICATION plain FOR TABLE g`)
	srv, err := c.ReadServer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pub       string
		columns   []string
		generated []string
	}{{"chron_pub", []string{"id", "a", "twice"}, []string{"half"}}, {"plain", []string{"id", "a"}, []string{"twice", "half"}}} {
		genStored, err := c.PublishesGenerated(t.Context(), tc.pub)
		if err != nil {
			t.Fatal(err)
		}
		tb, err := c.ReadTable(t.Context(), "public.g", genStored)
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, col := range tb.Columns {
			cols = append(cols, col.Name)
		}
		if !slices.Equal(cols, tc.columns) || !slices.Equal(tb.Generated, tc.generated) {
			t.Errorf("publication %s: columns %v, generated %v; want %v and %v", tc.pub, cols, tb.Generated, tc.columns, tc.generated)
		}
		f, _ := CheckGenerated(tb, srv, tc.pub)
		fixed := strings.Contains(f.Fix, `ALTER PUBLICATION "plain" SET (publish_generated_columns = stored)`)
		if fixed != (tc.pub == "plain") {
			t.Errorf("publication %s: fix %q; want the ALTER PUBLICATION only for plain", tc.pub, f.Fix)
		}
	}
}

// TestValueFormsThroughSnapshotAndStream (issue 20, item 7): values at the
// edges of their types, as the real server prints them, decode in the
// snapshot and the stream to the same Go type as their ordinary neighbours
// (none falls back to contract.Unknown text); a json value is its text, key
// order, duplicate keys and spacing included, at any depth.
func TestValueFormsThroughSnapshotAndStream(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	const depth = 10_001
	deep := strings.Repeat(`{"a":[`, depth) + "1" + strings.Repeat("]}", depth)
	const dups = `{"b": 1, "a": 2,  "a": 3}`
	// Postgres's JSON parser needs a deeper stack than the default 2MB to
	// read 10,001 levels.
	pg.Exec(t, "postgres", `CREATE TABLE v (id int PRIMARY KEY, n numeric, ts timestamp, tz timestamptz, j json, jb jsonb, arr int[]);`)
	insert := func(base int) string {
		return strings.ReplaceAll(`SET max_stack_depth = '7MB'; INSERT INTO v VALUES
($ID+1, 1.5, '2024-02-29 13:14:15', '2024-02-29 13:14:15+00', '`+dups+`', '{"a":1}', '{7,8,9}'),
($ID+2, 1e400, '10000-01-01 00:00:00', '294276-12-31 23:59:59.999999+00',
  (repeat('{"a":[', 10001) || '1' || repeat(']}', 10001))::json,
  (repeat('{"a":[', 10001) || '1' || repeat(']}', 10001))::jsonb, '[0:2]={7,8,9}'),
($ID+3, -1e-300, '0044-03-15 12:00:00 BC', '0044-03-15 12:00:00+00 BC', 'null', '[]', '[-1:0][1:1]={{1},{2}}');`, "$ID", itoa(base))
	}
	pg.Exec(t, "postgres", insert(0))
	sink := newMemSink()
	startSource(t, baseConfig(pg, "postgres", "v"), sink)
	waitFor(t, 30*time.Second, "the snapshot", func() bool { return len(sink.changes()) >= 3 })
	waitForSlotActive(t, pg, "chron")
	pg.Exec(t, "postgres", insert(10))
	waitFor(t, 60*time.Second, "the stream", func() bool { return len(sink.changes()) >= 6 })
	got := sink.changes()
	wantJ := map[int64]string{1: dups, 2: deep, 3: "null"}
	for i, c := range got {
		row := c.New
		_, num := row["n"].(json.Number)
		_, ts := row["ts"].(time.Time)
		_, tz := row["tz"].(time.Time)
		if !num || !ts || !tz {
			t.Errorf("%s row %v: n %T, ts %T, tz %T; want json.Number, time.Time, time.Time", c.Op, row["id"], row["n"], row["ts"], row["tz"])
		}
		if j := row["j"]; j != wantJ[row["id"].(int64)%10] {
			t.Errorf("%s row %v: j is %T %.40q; want the json text %.40q", c.Op, row["id"], j, j, wantJ[row["id"].(int64)%10])
		}
		switch row["id"].(int64) % 10 {
		case 1:
			if !reflect.DeepEqual(row["arr"], []any{int64(7), int64(8), int64(9)}) {
				t.Errorf("%s row 1: arr %#v", c.Op, row["arr"])
			}
		case 2:
			if s := string(row["n"].(json.Number)); s != "1"+strings.Repeat("0", 400) {
				t.Errorf("%s row 2: n %.30s... (%d digits); want 1 and 400 zeros", c.Op, s, len(s))
			}
			if b, err := contract.AppendJSON(nil, row["jb"], contract.UnchangedError); err != nil || string(b) != deep {
				t.Errorf("%s row 2: jb is %T, written back %d bytes (%v); want the %d-deep document", c.Op, row["jb"], len(b), err, depth)
			}
			if want := map[string]any{"lowerBounds": []any{int64(0)}, "elements": []any{int64(7), int64(8), int64(9)}}; !reflect.DeepEqual(row["arr"], want) {
				t.Errorf("%s row 2: arr %#v; want %#v", c.Op, row["arr"], want)
			}
			if y := row["tz"].(time.Time).Year(); y != 294276 {
				t.Errorf("%s row 2: tz year %d", c.Op, y)
			}
		case 3:
			if y := row["ts"].(time.Time).Year(); y != -43 || row["tz"].(time.Time).Year() != -43 {
				t.Errorf("%s row 3: ts %v, tz %v; want 44 BC (year -43)", c.Op, row["ts"], row["tz"])
			}
			if want := map[string]any{"lowerBounds": []any{int64(-1), int64(1)}, "elements": []any{[]any{int64(1)}, []any{int64(2)}}}; !reflect.DeepEqual(row["arr"], want) {
				t.Errorf("%s row 3: arr %#v; want %#v", c.Op, row["arr"], want)
			}
		}
		if i >= 3 && !reflect.DeepEqual(stripID(row), stripID(got[i-3].New)) {
			t.Errorf("stream row %v differs from its snapshot twin", row["id"])
		}
	}
}

func stripID(row map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range row {
		if k != "id" {
			out[k] = v
		}
	}
	return out
}

// TestDroppedSlotStopsCapture (issue 20, item 1): a slot dropped by an
// admin while capture runs, or while it is stopped, is not silently
// replaced: Run stops with a *SlotMissingError naming the evidence, and
// creates no slot, as long as capture had streamed through it (this
// process's confirmations, a completed snapshot in the snapshot state, or
// progress in the store). With postgres.on_missing_slot: resnapshot it
// takes a new snapshot, which holds the rows written in the gap.
func TestDroppedSlotStopsCapture(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE d (id int PRIMARY KEY, v text); INSERT INTO d VALUES (1, 'a');`)
	conn := pg.Connect(t, "postgres")
	slots := func() int {
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'chron'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	state := NewMemorySnapshotState()
	cfg := baseConfig(pg, "postgres", "d")
	cfg.SnapshotState, cfg.StatusInterval = state, 50*time.Millisecond
	// Reconnects wait 2-4 s: room for the admin to drop the released slot.
	cfg.ReconnectMin, cfg.ReconnectMax = 4*time.Second, 4*time.Second

	// While running: the admin ends the walsender and drops the slot.
	src, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sink := newMemSink()
	sink.src = src
	done := make(chan error, 1)
	go func() { done <- src.Run(t.Context(), sink) }()
	waitFor(t, 30*time.Second, "the snapshot", func() bool {
		b, _, _ := state.Load(t.Context(), "chron")
		init := b.Initial()
		return init != nil && init.Status == SnapshotDone
	})
	waitForSlotActive(t, pg, "chron")
	pg.Exec(t, "postgres", `INSERT INTO d VALUES (2, 'b')`)
	waitFor(t, 30*time.Second, "the insert", func() bool { return len(sink.changes()) == 2 })
	waitFor(t, 30*time.Second, "the slot dropped", func() bool {
		_, _ = conn.Exec(t.Context(), "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'chron' AND active_pid IS NOT NULL")
		_, err := conn.Exec(t.Context(), "SELECT pg_drop_replication_slot('chron')")
		return err == nil
	})
	pg.Exec(t, "postgres", `INSERT INTO d VALUES (3, 'lost as a change')`)
	var missing *SlotMissingError
	select {
	case err := <-done:
		if !errors.As(err, &missing) || missing.Slot != "chron" || len(missing.Evidence) != 2 ||
			!strings.HasPrefix(missing.Evidence[0], "this process confirmed up to ") ||
			!strings.HasPrefix(missing.Evidence[1], "its initial snapshot initial-") || !strings.HasSuffix(missing.Evidence[1], " completed (snapshot state)") {
			t.Fatalf("Run after the slot was dropped = %v; want a *SlotMissingError with this process's position and the snapshot", err)
		}
		if !strings.Contains(err.Error(), "postgres.on_missing_slot: resnapshot") {
			t.Errorf("error %q does not name the way forward", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not stop within 60s of the slot being dropped")
	}
	if n := slots(); n != 0 {
		t.Fatalf("%d slots chron after the refusal; want none (a new slot would hide the gap)", n)
	}

	// While stopped: the snapshot state says the snapshot completed.
	if err := runOnce(t, cfg); !errors.As(err, &missing) || len(missing.Evidence) != 1 {
		t.Fatalf("restart with the snapshot state = %v; want a *SlotMissingError", err)
	}
	// Snapshot mode never, no snapshot state: the store's progress says so.
	never := cfg
	never.SnapshotMode, never.SnapshotState = SnapshotNever, NewMemorySnapshotState()
	never.History = func(context.Context) ([]string, error) { return []string{"progress up to 0/16B3748"}, nil }
	if err := runOnce(t, never); !errors.As(err, &missing) || !slices.Equal(missing.Evidence, []string{"progress up to 0/16B3748"}) {
		t.Fatalf("restart with progress in the store = %v; want a *SlotMissingError naming it", err)
	}
	if n := slots(); n != 0 {
		t.Fatalf("%d slots chron after the refusals; want none", n)
	}

	// The operator allows it: a new slot, and a snapshot with the gap's row.
	cfg.OnMissingSlot = MissingSlotResnapshot
	cfg.ReconnectMin, cfg.ReconnectMax = 0, 0
	sink = newMemSink()
	startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "the new snapshot", func() bool {
		for _, c := range sink.changes() {
			if c.Op == contract.OpSnapshot && c.New["id"] == int64(3) {
				return true
			}
		}
		return false
	})
	if n := slots(); n != 1 {
		t.Fatalf("%d slots chron with on_missing_slot resnapshot; want 1", n)
	}
}

// TestBinaryMessageContentArrivesAsBytes (issue 20, item 6): a logical
// message with binary content (\x00ff00) reaches the sink byte for byte
// (mapping's message.bytes then writes it base64). And a non-transactional
// message emitted in a transaction just before its commit is not lost:
// pgoutput gives it the LSN where the commit record starts, so it used to
// share the transaction's position (commit LSN, ordinal 0) and the
// transaction was taken for a re-delivery of it.
func TestBinaryMessageContentArrivesAsBytes(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE m (id int PRIMARY KEY)`)
	sink := newMemSink()
	startSource(t, baseConfig(pg, "postgres", "m"), sink)
	waitForSlotActive(t, pg, "chron")
	// One implicit transaction: the transactional message comes with its
	// commit, the other at once.
	pg.Exec(t, "postgres", `SELECT pg_logical_emit_message(true, 'app.bin', '\x00ff00'::bytea); SELECT pg_logical_emit_message(false, 'app.bin', '\xc328'::bytea)`)
	waitFor(t, 30*time.Second, "the two messages", func() bool { return len(sink.changes()) >= 2 })
	got := sink.changes()
	want := []struct {
		content       []byte
		transactional bool
	}{{[]byte{0xc3, 0x28}, false}, {[]byte{0x00, 0xff, 0x00}, true}}
	for i, c := range got[:2] {
		if c.Op != contract.OpMessage || c.Message == nil || !slices.Equal(c.Message.Content, want[i].content) || c.Message.Transactional != want[i].transactional {
			t.Fatalf("message %d: %+v; want content % x, transactional %v", i, c.Message, want[i].content, want[i].transactional)
		}
	}
	if got[0].Tx.CommitLSN >= got[1].Tx.CommitLSN || sink.replays != 0 || sink.mismatch != nil {
		t.Fatalf("positions: standalone %s, transaction %s, %d replays (%v); want the standalone first, distinct",
			got[0].Tx.CommitLSN, got[1].Tx.CommitLSN, sink.replays, sink.mismatch)
	}
}

// TestColumnChangesWhileStreamingAreReported (issue 20, item 5, a type
// change while running): a Relation message that changes the table's
// columns (a type change, a rename, an added column) is logged at WARN
// once, naming each, and counted; the change after it carries the new
// type's value. A Relation message sent again without a column change
// (after ALTER TABLE ... SET (fillfactor)) is not reported.
func TestColumnChangesWhileStreamingAreReported(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE s (id int PRIMARY KEY, qty int NOT NULL, note text)`)
	logs := &lockedBuffer{}
	cfg := baseConfig(pg, "postgres", "s")
	cfg.StatusInterval, cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 50*time.Millisecond, time.Second
	src, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	sink := newMemSink()
	sink.src = src
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitForSlotActive(t, pg, "chron")
	pg.Exec(t, "postgres", `INSERT INTO s VALUES (1, 5, 'a')`)
	pg.Exec(t, "postgres", `ALTER TABLE s SET (fillfactor = 90); INSERT INTO s VALUES (2, 6, 'b')`)
	pg.Exec(t, "postgres", `ALTER TABLE s ALTER COLUMN qty TYPE text; ALTER TABLE s RENAME note TO remark;
ALTER TABLE s ADD COLUMN extra int; INSERT INTO s VALUES (3, '7', 'c', 1)`)
	inserts := func() []*contract.Change { // the snapshot read while streaming may add its own
		return slices.DeleteFunc(sink.changes(), func(c *contract.Change) bool { return c.Op != contract.OpInsert })
	}
	waitFor(t, 30*time.Second, "three inserts", func() bool { return len(inserts()) >= 3 })

	got := inserts()
	if got[1].New["qty"] != int64(6) || got[2].New["qty"] != "7" || got[2].New["remark"] != "c" {
		t.Fatalf("rows %v and %v; want qty 6 (int4), then qty \"7\" (text) and remark c", got[1].New, got[2].New)
	}
	if n := testutilCounter(src.m.schemaChanges.WithLabelValues("public.s")); n != 1 {
		t.Errorf("chronicler_capture_schema_changes_total{table=public.s} = %v; want 1", n)
	}
	out := logs.String()
	if n := strings.Count(out, "capture: the table's columns changed"); n != 1 {
		t.Fatalf("%d column-change lines; want 1:\n%s", n, out)
	}
	for _, want := range []string{"table=public.s", "added=\"[remark extra]\"", "dropped=[note]", "retyped=\"[qty int4 → text]\"", "level=WARN"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %s:\n%s", want, out)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
