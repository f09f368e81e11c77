package e2e

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// verify checks every account stream and the dead-letter stream against the
// database: each expected event once, in commit (version) order, with the
// values the database holds; the dead-letter stream holds exactly the bad
// history rows; the last progress marker covers every stored event.
func (e *env) verify(db *esdb.Client) {
	t := e.t
	t.Helper()
	conn := e.conn()
	defer conn.Close(context.Background())
	type hist struct {
		hid            int64
		version, delta int
		bad            bool
	}
	byAcct := map[int][]hist{}
	bad := map[int64]bool{}
	rows, err := conn.Query(context.Background(), "SELECT hid, aid, version, delta, note FROM history ORDER BY aid, version")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for rows.Next() {
		var h hist
		var aid int
		var note string
		if err := rows.Scan(&h.hid, &aid, &h.version, &h.delta, &note); err != nil {
			t.Fatal(err)
		}
		h.bad = note == "bad"
		if h.bad {
			bad[h.hid] = true
		}
		byAcct[aid] = append(byAcct[aid], h)
		total++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	var maxCommit contract.LSN
	events, mismatched := 0, 0
	for aid := 1; aid <= accounts; aid++ {
		stream := fmt.Sprintf("acct-%d", aid)
		var want []string
		balance := int64(0)
		for i, h := range byAcct[aid] {
			if h.version != i+1 {
				t.Fatalf("database: account %d history versions are not 1..n (row %d has %d)", aid, i, h.version)
			}
			balance += int64(h.delta)
			want = append(want, fmt.Sprintf("BalanceChanged aid=%d version=%d balance=%d", aid, h.version, balance))
			if !h.bad {
				want = append(want, fmt.Sprintf("MoneyMoved hid=%d aid=%d version=%d delta=%d", h.hid, aid, h.version, h.delta))
			}
		}
		got := readAll(t, db, stream)
		events += len(got)
		var gotS []string
		var last contract.LSN
		for i, ev := range got {
			d := ev.Data
			switch ev.Type {
			case "BalanceChanged":
				gotS = append(gotS, fmt.Sprintf("BalanceChanged aid=%v version=%v balance=%v", d["aid"], d["version"], d["balance"]))
			case "MoneyMoved":
				gotS = append(gotS, fmt.Sprintf("MoneyMoved hid=%v aid=%v version=%v delta=%v", d["hid"], d["aid"], d["version"], d["delta"]))
			default:
				gotS = append(gotS, "unexpected type "+ev.Type)
			}
			lsn, err := contract.ParseLSN(fmt.Sprint(ev.Meta["commitLsn"]))
			if err != nil {
				t.Fatalf("%s event %d: metadata commitLsn: %v", stream, i, err)
			}
			if lsn < last {
				t.Errorf("%s event %d: commit LSN %s before the previous event's %s", stream, i, lsn, last)
			}
			last = lsn
			maxCommit = max(maxCommit, lsn)
		}
		if d := firstDiff(want, gotS); d != "" {
			mismatched++
			if mismatched <= 5 {
				t.Errorf("stream %s (%d events, want %d): %s", stream, len(gotS), len(want), d)
			}
		}
	}
	if mismatched > 0 {
		t.Fatalf("%d of %d account streams differ from the database", mismatched, accounts)
	}

	dl := readAll(t, db, "chronicler-deadletter-"+slot)
	seen := map[int64]int{}
	for i, ev := range dl {
		ch, _ := ev.Data["change"].(map[string]any)
		nw, _ := ch["new"].(map[string]any)
		hid, err := strconv.ParseInt(fmt.Sprint(nw["hid"]), 10, 64)
		if err != nil || ev.Type != "ChroniclerDeadLetter" || ev.Data["rule"] != "money-moved" || ev.Data["reason"] != "rule" || ch["table"] != "history" {
			t.Fatalf("dead letter %d is not a money-moved failure of a history row: %v", i, ev.Data)
		}
		seen[hid]++
	}
	for hid, n := range seen {
		if n != 1 {
			t.Errorf("dead letter for history row %d stored %d times", hid, n)
		}
		if !bad[hid] {
			t.Errorf("dead letter for history row %d, which is not a bad row", hid)
		}
	}
	for hid := range bad {
		if seen[hid] == 0 {
			t.Errorf("bad history row %d has no dead letter", hid)
		}
	}
	if len(bad) == 0 {
		t.Fatal("the workload wrote no bad rows: the dead-letter check proved nothing")
	}

	// The progress marker is written asynchronously after the last durable
	// report: poll for it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := readAll(t, db, "chronicler-progress-"+slot)
		var at contract.LSN
		if len(p) > 0 {
			at, _ = contract.ParseLSN(fmt.Sprint(p[len(p)-1].Data["durableLsn"]))
		}
		if at >= maxCommit {
			var prev contract.LSN
			for i, m := range p {
				l, err := contract.ParseLSN(fmt.Sprint(m.Data["durableLsn"]))
				if err != nil || l < prev {
					t.Fatalf("progress marker %d (%v) after %s: markers must never go backwards", i, m.Data, prev)
				}
				prev = l
			}
			break
		}
		if time.Now().After(deadline) {
			var lastFew []any
			for _, m := range p[max(0, len(p)-3):] {
				lastFew = append(lastFew, m.Data)
			}
			t.Fatalf("last progress marker %s is below the last stored commit LSN %s (%d markers; last: %v)", at, maxCommit, len(p), lastFew)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
	}
	t.Logf("verified: %d history rows, %d account events in %d streams, %d dead letters, max commit LSN %s", total, events, accounts, len(dl), maxCommit)
}

func firstDiff(want, got []string) string {
	for i := 0; i < len(want) || i < len(got); i++ {
		w, g := "<none>", "<none>"
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			return fmt.Sprintf("event %d: want %q, got %q", i, w, g)
		}
	}
	return ""
}
