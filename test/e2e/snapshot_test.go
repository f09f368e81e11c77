package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

const snapshotRows = 30000

// TestSnapshotResumesAfterKill: chronicler is SIGKILLed in the middle of
// the initial snapshot; the restarted process loads the progress from the
// store (chronicler-snapshot-<slot>), resumes after the last acknowledged
// chunk, and every row ends up in its stream exactly once, in key order.
func TestSnapshotResumesAfterKill(t *testing.T) {
	addr := freeAddr(t)
	e := newEnvWith(t, setup{
		schema: fmt.Sprintf("CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, %d) g;", snapshotRows),
		rules: `capture:
  - name: item-snapshotted
    table: public.items
    on: [snapshot]
    stream: {category: item, id: 'string(new.id % 50)'}
    type: ItemSnapshotted
    data: {id: new.id, v: new.v}
`,
		tables: "[public.items]",
		extra:  fmt.Sprintf("snapshot: {mode: initial, chunk_rows: 500}\nhttp:\n  addr: %q\n", addr),
	})
	db := e.store.client(t)
	e.startChronicler()
	notReady := false
	// Kill once a few chunks are saved, before the snapshot is done.
	deadline := time.Now().Add(60 * time.Second)
	for {
		saved := readAll(t, db, "chronicler-snapshot-"+slot)
		if n := len(saved); n > 0 && saved[n-1].Data["done"] == true {
			t.Fatalf("the snapshot of %d rows completed before it could be killed: raise snapshotRows", snapshotRows)
		}
		if len(saved) >= 1 && !notReady {
			// Mid-snapshot: not ready, and it says why.
			if code, body := readyz(addr); code == 503 && strings.Contains(body, "snapshot") {
				notReady = true
			} else if code != 0 {
				t.Logf("/readyz during the snapshot: %d %q", code, body)
			}
		}
		if len(saved) >= 3 {
			if !notReady {
				t.Fatal("/readyz never answered 503 naming the snapshot while it ran")
			}
			t.Logf("killing chronicler after %d saved snapshot chunks (%v rows)", len(saved), saved[len(saved)-1].Data["rows"])
			break
		}
		e.checkRunning()
		if time.Now().After(deadline) {
			t.Fatal("no snapshot progress saved within 60s")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, with a deadline
	}
	e.killChronicler()
	e.startChronicler()
	e.waitLog("capture: streaming")
	e.requireLogged("capture: resuming the initial snapshot from the last completed chunk")
	deadline = time.Now().Add(30 * time.Second)
	for code, body := readyz(addr); code != 200 || body != "active"; code, body = readyz(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after the snapshot: %d %q, want 200 active", code, body)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
	}
	e.stopChronicler()

	saved := readAll(t, db, "chronicler-snapshot-"+slot)
	if last := saved[len(saved)-1].Data; last["done"] != true {
		t.Fatalf("last saved snapshot progress is not done: %v", last)
	}
	total := 0
	for k := 0; k < 50; k++ {
		stream := fmt.Sprintf("item-%d", k)
		got := readAll(t, db, stream)
		var want []int
		for id := 1; id <= snapshotRows; id++ {
			if id%50 == k {
				want = append(want, id)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d events, want %d (one per row)", stream, len(got), len(want))
			continue
		}
		for i, ev := range got {
			id, _ := strconv.Atoi(fmt.Sprint(ev.Data["id"]))
			if id != want[i] || ev.Data["v"] != fmt.Sprintf("v%d", id) || ev.Type != "ItemSnapshotted" {
				t.Errorf("%s event %d: %v, want row %d", stream, i, ev.Data, want[i])
				break
			}
		}
		total += len(got)
	}
	t.Logf("figure: snapshot resumed after SIGKILL: %d rows, each once in 50 streams", total)
}
