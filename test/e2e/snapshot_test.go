package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/jackc/pgx/v5"
)

// snapBuckets is how many streams the rows are spread over (item-<id % snapBuckets>).
const snapBuckets = 100

// snapshotRules: every row's snapshot and updates go to item-<id % 100>.
const snapshotRules = `capture:
  - name: item-snapshotted
    table: public.items
    on: [snapshot]
    stream: {category: item, id: 'string(new.id % 100)'}
    type: ItemSnapshotted
    data: {id: new.id, v: new.v}
  - name: item-updated
    table: public.items
    on: [update]
    stream: {category: item, id: 'string(new.id % 100)'}
    type: ItemUpdated
    data: {id: new.id, v: new.v}
`

// updater updates random rows of items, one transaction each, at about
// perSecond, recording every committed update in commit order (one
// connection: its commits are in the order it made them). It stops between
// statements, never by cancelling one (a cancelled statement may still
// commit after the client gave up on it).
type updater struct {
	mu   sync.Mutex
	log  map[int][]string // id -> the values it was updated to, in order
	n    atomic.Int64
	halt atomic.Bool
	done chan error
}

func startUpdater(t *testing.T, url string, rows, perSecond int) *updater {
	u := &updater{log: map[int][]string{}, done: make(chan error, 1)}
	go func() { u.done <- u.run(url, rows, perSecond) }()
	t.Cleanup(func() { u.halt.Store(true) })
	return u
}

func (u *updater) run(url string, rows, perSecond int) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	every := time.Second / time.Duration(perSecond)
	next := time.Now()
	for i := 0; !u.halt.Load(); i++ {
		id := rand.IntN(rows) + 1
		v := fmt.Sprintf("u%d", i)
		if _, err := conn.Exec(ctx, "UPDATE items SET v = $2 WHERE id = $1", id, v); err != nil {
			return err
		}
		u.mu.Lock()
		u.log[id] = append(u.log[id], v)
		u.mu.Unlock()
		u.n.Add(1)
		next = next.Add(every)
		time.Sleep(time.Until(next)) // the write rate, not a wait for a result
	}
	return nil
}

func (u *updater) stop(t *testing.T) {
	t.Helper()
	u.halt.Store(true)
	if err := <-u.done; err != nil {
		t.Fatal(err)
	}
}

// longestTx polls pg_stat_activity for the oldest open transaction of
// capture's normal sessions until stop is called, and returns the longest
// it saw.
func longestTx(t *testing.T, url string) (stop func() time.Duration) {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	var longest atomic.Int64
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close(context.Background())
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var secs float64
			err := conn.QueryRow(context.Background(), `SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8
FROM pg_stat_activity WHERE application_name = 'chronicler-capture' AND backend_type = 'client backend' AND xact_start IS NOT NULL`).Scan(&secs)
			if err == nil && int64(secs*1000) > longest.Load() {
				longest.Store(int64(secs * 1000))
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() time.Duration {
		close(quit)
		<-done
		return time.Duration(longest.Load()) * time.Millisecond
	}
}

// savedSnapshot returns snapshot id's saved entry (id "": the initial
// one) from the last save in chronicler-snapshot-<slot>, nil before there
// is one.
func savedSnapshot(t *testing.T, db *esdb.Client, id string) map[string]any {
	saved := readAll(t, db, "chronicler-snapshot-"+slot)
	if len(saved) == 0 {
		return nil
	}
	list, _ := saved[len(saved)-1].Data["snapshots"].([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && ((id == "" && m["initial"] == true) || (id != "" && m["id"] == id)) {
			return m
		}
	}
	return nil
}

// TestSnapshotUnderWritesSurvivesKills (issue 20 item 2, issue 15): the
// initial snapshot of 100,000 rows, read in chunks while streaming, under
// 100 updates/s, chronicler SIGKILLed 8 times at random moments during it.
// Every row has exactly one snapshot event in its stream; every committed
// update is there exactly once, in commit order; the snapshot event shows
// exactly the updates before it in the stream (never older than a change
// before it, never newer than one after it); the last event is the table's
// value. No transaction of capture stays open 10 s (pg_stat_activity).
func TestSnapshotUnderWritesSurvivesKills(t *testing.T) {
	rows, kills := 100_000, 8
	if testing.Short() {
		rows, kills = 20_000, 3
	}
	snapshotUnderWrites(t, false, rows, kills)
}

// TestRequestedSnapshotUnderWritesSurvivesKills (issue 16): capture
// streams (snapshot.mode never) under 100 updates/s; `chronicler snapshot
// public.items` reads the table's 100,000 rows while chronicler is SIGKILLed
// 5 times. The same checks as above: every row's snapshot event once,
// showing exactly the updates before it; every update once, in order.
func TestRequestedSnapshotUnderWritesSurvivesKills(t *testing.T) {
	rows, kills := 100_000, 5
	if testing.Short() {
		rows, kills = 20_000, 3
	}
	snapshotUnderWrites(t, true, rows, kills)
}

// snapshotRows, when set, replaces the row count of both tests (issue 15
// asks for 1,000,000: go test ./test/e2e -run SnapshotUnderWrites -args
// -snapshot-rows=1000000).
var snapshotRows = flag.Int("snapshot-rows", 0, "rows of the snapshot tests (0: 100,000, or 20,000 with -short)")

// snapshotUnderWrites runs the initial snapshot (requested false) or one
// requested with `chronicler snapshot` of a table of rows under updates,
// SIGKILLs chronicler kills times during it, and checks every stream.
func snapshotUnderWrites(t *testing.T, requested bool, rows, kills int) {
	if *snapshotRows > 0 {
		rows = *snapshotRows
	}
	addr := freeAddr(t)
	mode := "initial"
	if requested {
		mode = "never"
	}
	e := newEnvWith(t, setup{
		schema: fmt.Sprintf("CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL); INSERT INTO items SELECT g, 'v0' FROM generate_series(1, %d) g;", rows),
		rules:  snapshotRules,
		tables: "[public.items]",
		// The rate bound makes the snapshot last about 40 s, so that the
		// kills fall during it on a fast machine too.
		extra: fmt.Sprintf("snapshot: {mode: %s, chunk_rows: 1000, max_rows_per_second: %d}\nhttp:\n  addr: %q\n", mode, rows/40, addr),
	})
	db := e.store.client(t)
	stopTx := longestTx(t, e.dbURL)
	e.startChronicler()
	var u *updater
	id := ""
	if requested {
		e.waitLog("capture: streaming")
		// The slot exists: every update from now on is in the stream.
		u = startUpdater(t, e.dbURL, rows, 100)
		id = "snap-e2e"
		out, err := exec.Command(bins.chronicler, "snapshot", "public.items", "--id", id, "--config", e.cfg).CombinedOutput()
		if err != nil {
			t.Fatalf("chronicler snapshot: %v\n%s", err, out)
		}
	} else {
		// The updates start once the slot exists (the initial snapshot is
		// saved after the slot is created): every one of them is in the
		// stream.
		waitUntil(t, e, time.Minute, "the initial snapshot's first save", func() bool { return savedSnapshot(t, db, "") != nil })
		u = startUpdater(t, e.dbURL, rows, 100)
	}

	killed, notReady := 0, false
	deadline := time.Now().Add(10 * time.Minute)
	for killed < kills {
		// Wait until the snapshot made progress in this run, then kill
		// at a random moment.
		before := savedSnapshot(t, db, id)
		for {
			cur := savedSnapshot(t, db, id)
			if cur != nil && cur["state"] == "done" {
				t.Fatalf("the snapshot of %d rows completed after %d of %d kills: raise the row count", rows, killed, kills)
			}
			if cur != nil && (before == nil || cur["rows"] != before["rows"]) {
				break
			}
			e.checkRunning()
			if time.Now().After(deadline) {
				t.Fatalf("no snapshot progress after %d kills", killed)
			}
			time.Sleep(20 * time.Millisecond) // polling interval, with a deadline
		}
		if !notReady && !requested {
			if code, body := readyz(addr); code == 503 && strings.Contains(body, "snapshot") {
				notReady = true
			} else {
				t.Logf("/readyz during the snapshot: %d %q", code, body)
			}
		}
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond) // a random moment, not a wait for a result
		cur := savedSnapshot(t, db, id)
		if cur != nil && cur["state"] == "done" {
			t.Fatalf("the snapshot of %d rows completed after %d of %d kills: raise the row count", rows, killed, kills)
		}
		e.killChronicler()
		killed++
		t.Logf("kill %d at %v of %d rows (updates so far %d)", killed, cur["rows"], rows, u.n.Load())
		e.startChronicler()
	}
	if !notReady && !requested {
		t.Error("/readyz never answered 503 naming the snapshot while the initial snapshot ran")
	}
	for {
		if cur := savedSnapshot(t, db, id); cur != nil && cur["state"] == "done" {
			break
		}
		e.checkRunning()
		if time.Now().After(deadline) {
			t.Fatal("the snapshot did not complete")
		}
		time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
	}
	e.requireLogged("capture: snapshot resumed at its last completed chunk")
	if !requested {
		waitUntil(t, e, 30*time.Second, "/readyz 200 active after the initial snapshot", func() bool {
			code, body := readyz(addr)
			return code == 200 && body == "active"
		})
	}
	u.stop(t)
	e.waitCaughtUp(2 * time.Minute)
	e.stopChronicler()
	longest := stopTx()

	table := map[int]string{}
	conn := e.conn()
	defer conn.Close(context.Background())
	res, err := conn.Query(context.Background(), "SELECT id, v FROM items")
	if err != nil {
		t.Fatal(err)
	}
	for res.Next() {
		var id int
		var v string
		if err := res.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		table[id] = v
	}
	if res.Err() != nil {
		t.Fatal(res.Err())
	}

	type seq struct {
		snapshots int
		snapAt    int // updates before the snapshot event
		snapV     string
		updates   []string
	}
	got := map[int]*seq{}
	events, doubled, snapIDs := 0, 0, map[string]bool{}
	for k := 0; k < snapBuckets; k++ {
		for _, ev := range readAll(t, db, fmt.Sprintf("item-%d", k)) {
			events++
			id, _ := strconv.Atoi(fmt.Sprint(ev.Data["id"]))
			v := fmt.Sprint(ev.Data["v"])
			s := got[id]
			if s == nil {
				s = &seq{}
				got[id] = s
			}
			switch ev.Type {
			case "ItemSnapshotted":
				if s.snapshots++; s.snapshots == 2 {
					doubled++
				}
				s.snapAt, s.snapV = len(s.updates), v
				snapIDs[fmt.Sprint(ev.Meta["snapshot"])] = true
			case "ItemUpdated":
				s.updates = append(s.updates, v)
			}
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	lost := 0
	for id := 1; id <= rows; id++ {
		s, want := got[id], u.log[id]
		if s == nil {
			report("id %d: no event at all", id)
			continue
		}
		if s.snapshots != 1 {
			report("id %d: %d snapshot events; want 1", id, s.snapshots)
		}
		if wb, _ := json.Marshal(want); string(wb) != func() string { b, _ := json.Marshal(s.updates); return string(b) }() {
			if len(s.updates) < len(want) {
				lost += len(want) - len(s.updates)
			}
			report("id %d: update events %v; the committed updates were %v", id, s.updates, want)
		}
		wantSnap := "v0"
		if s.snapAt > 0 {
			wantSnap = want[min(s.snapAt, len(want))-1]
		}
		if s.snapshots == 1 && s.snapV != wantSnap {
			report("id %d: snapshot shows %q after %d updates; want %q (the state after exactly the updates before it)", id, s.snapV, s.snapAt, wantSnap)
		}
		last := s.snapV
		if s.snapAt < len(s.updates) {
			last = s.updates[len(s.updates)-1]
		}
		if last != table[id] {
			report("id %d: last event shows %q; the table has %q", id, last, table[id])
		}
	}
	if len(snapIDs) != 1 || (requested && !snapIDs[id]) {
		t.Errorf("snapshot ids in the events' metadata: %v; want one (the snapshot's)", snapIDs)
	}
	if bad > 0 {
		t.Errorf("%d rows wrong; %d streams' rows with 2+ snapshot copies, %d update events lost", bad, doubled, lost)
	}
	if longest >= 10*time.Second {
		t.Errorf("capture held a transaction open %s; want under 10s", longest)
	}
	t.Logf("figure: %s snapshot of %d rows under %d updates, %d SIGKILLs: %d events, every row once, every update once; longest capture transaction %s",
		map[bool]string{false: "initial", true: "requested"}[requested], rows, u.n.Load(), kills, events, longest.Round(time.Millisecond))
}
