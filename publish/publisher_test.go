package publish_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

func onClusters(t *testing.T, f func(t *testing.T, k *stack.Kafka)) {
	t.Run("real", func(t *testing.T) { f(t, stack.StartKafka(t)) })
	t.Run("kfake", func(t *testing.T) { f(t, stack.StartKFake(t)) })
}

// expectation is what the customer topic must hold: per key, the seq
// numbers in store order, and per ce_id the stored event it came from.
type expectation struct {
	perKey map[string][]int
	ids    map[string]bool // ce_id
}

func newExpectation() *expectation {
	return &expectation{perKey: map[string][]int{}, ids: map[string]bool{}}
}

// customers appends n CustomerChanged events over 4 customers, interleaved,
// one source transaction each, recording what the topic must hold.
func (e *expectation) customers(s *lowStore, lsn *uint64, n int) {
	for i := 0; i < n; i++ {
		*lsn++
		c := i % 4
		seq := len(e.perKey[fmt.Sprint(c)])
		ids := s.appendTx(*lsn, customer(c, seq, fmt.Sprintf("c%d-%d@x", c, seq)))
		e.perKey[fmt.Sprint(c)] = append(e.perKey[fmt.Sprint(c)], seq)
		e.ids[ids[0]+"/customer-changed"] = true
	}
}

// check asserts every expected event is in recs exactly once, in store
// order per key.
func (e *expectation) check(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	seen := map[string]int{}
	perKey := map[string][]int{}
	for _, r := range recs {
		id := header(r, kafka.HeaderID)
		seen[id]++
		var v struct{ Seq int }
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record value %s: %v", r.Value, err)
		}
		perKey[string(r.Key)] = append(perKey[string(r.Key)], v.Seq)
	}
	for id, n := range seen {
		if !e.ids[id] {
			t.Errorf("unexpected record ce_id %s", id)
		}
		if n != 1 {
			t.Errorf("ce_id %s seen %d times; want once", id, n)
		}
	}
	for id := range e.ids {
		if seen[id] == 0 {
			t.Errorf("record for ce_id %s missing", id)
		}
	}
	for k, want := range e.perKey {
		if fmt.Sprint(perKey[k]) != fmt.Sprint(want) {
			t.Errorf("key %s: seqs %v; want %v (store order)", k, perKey[k], want)
		}
	}
}

// TestPromotePerEvent: per-event rules produce one record per event with
// the CloudEvents headers exactly, the entity id as key, store order per
// key; a failing promotion and a too-large record go to the dead-letter
// topic with the original event, counted, and the line goes on.
func TestPromotePerEvent(t *testing.T) {
	onClusters(t, func(t *testing.T, k *stack.Kafka) {
		db, n, s := startStore(t)
		exp := newExpectation()
		lsn := uint64(100)
		exp.customers(s, &lsn, 20)
		lsn++
		broken := s.appendTx(lsn, lowEvent{"customer-9", "CustomerBroken", map[string]any{"email": "not-a-number"}})[0]
		lsn++
		big := s.appendTx(lsn, customer(8, 0, strings.Repeat("x", 5000)))[0]
		exp.customers(s, &lsn, 8)
		r := start(t, config(db, loadRules(t, n), k, n, kafka.ExactlyOnce))
		r.waitThrough(t, s.last)

		recs := readTopic(t, k, n.customers)
		exp.check(t, recs)
		for _, rec := range recs {
			var v struct {
				ID  int
				Seq int
			}
			_ = json.Unmarshal(rec.Value, &v)
			want := map[string]string{
				kafka.HeaderSpecVersion: "1.0", kafka.HeaderSource: "chronicler/" + testSlot + "/customer-changed",
				kafka.HeaderType: "crm.customer.changed.v1", kafka.HeaderSubject: "customer-" + string(rec.Key),
				kafka.HeaderContentType: "application/json", "change": "customer-changed",
			}
			for h, w := range want {
				if got := header(rec, h); got != w {
					t.Errorf("record %s: header %s = %q; want %q", rec.Value, h, got, w)
				}
			}
			if ts, err := time.Parse(time.RFC3339Nano, header(rec, kafka.HeaderTime)); err != nil || ts.Before(commitTime(100)) || ts.After(commitTime(200)) {
				t.Errorf("ce_time %q: want the source commit time (2026-01-01T00:00:00.1..0.2Z)", header(rec, kafka.HeaderTime))
			}
			if fmt.Sprint(v.ID) != string(rec.Key) {
				t.Errorf("key %s, value id %d: want key = entity id", rec.Key, v.ID)
			}
			if len(rec.Headers) != 8 {
				t.Errorf("record has %d headers; want 7 CloudEvents + 1 rule header", len(rec.Headers))
			}
		}
		dead := readTopic(t, k, n.dead)
		if len(dead) != 2 {
			t.Fatalf("dead-letter topic has %d records; want 2 (broken promotion, too large)", len(dead))
		}
		wantDead := map[string]string{broken: "customer-broken", big: "customer-changed"}
		for _, d := range dead {
			id := header(d, kafka.HeaderDLEventID)
			if wantDead[id] == "" || header(d, kafka.HeaderDLRule) != wantDead[id] || header(d, kafka.HeaderDLError) == "" {
				t.Errorf("dead letter headers %v; want event %s or %s with rule and error", d.Headers, broken, big)
			}
			var v struct {
				Events []struct {
					ID       string
					Data     json.RawMessage
					Metadata json.RawMessage
				}
			}
			if err := json.Unmarshal(d.Value, &v); err != nil || len(v.Events) != 1 || v.Events[0].ID != id || len(v.Events[0].Metadata) == 0 {
				t.Errorf("dead letter value %s: want the original event with metadata", d.Value)
			}
			if id == broken && !strings.Contains(string(v.Events[0].Data), "not-a-number") {
				t.Errorf("dead letter of %s lacks the original data: %s", id, d.Value)
			}
		}
		if st := r.p.Stats(); st.DeadLetters != 2 || st.Records != 28 {
			t.Errorf("stats %+v; want 28 records, 2 dead letters", st)
		}
	})
}

// TestExactlyOnceAcrossRestarts: publishers stopped by cancel while events
// keep coming are restarted; a read_committed consumer sees every event
// exactly once, in store order per key. (A crash inside a transaction:
// publish/kafka's TestOpenTransactionOfCrashedInstanceIsAborted at the
// writer, and test/e2e's TestChaosStoreToKafka, which SIGKILLs the
// publisher process under load, end to end.)
func TestExactlyOnceAcrossRestarts(t *testing.T) {
	onClusters(t, func(t *testing.T, k *stack.Kafka) {
		db, n, s := startStore(t)
		rs := loadRules(t, n)
		exp := newExpectation()
		lsn := uint64(0)

		exp.customers(s, &lsn, 120)
		r := start(t, config(db, rs, k, n, kafka.ExactlyOnce))
		r.waitThrough(t, s.last)
		exp.customers(s, &lsn, 80) // some may be in flight at cancel
		if err := r.stop(t); err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}

		r = start(t, config(db, rs, k, n, kafka.ExactlyOnce))
		exp.customers(s, &lsn, 200) // written while it runs
		if err := r.stop(t); err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}

		exp.customers(s, &lsn, 50)
		r = start(t, config(db, rs, k, n, kafka.ExactlyOnce))
		r.waitThrough(t, s.last)
		exp.check(t, readTopic(t, k, n.customers))
	})
}

// TestResubscribeWithoutGaps: subscriptions dropped by the server while
// events are appended are resumed after the last event handled: nothing
// missing, nothing twice. Run with transaction rules (filter: no system
// events) and per-event rules only (filter: by event type, so the other
// events appended in between are never delivered).
func TestResubscribeWithoutGaps(t *testing.T) {
	for name, rules := range map[string]string{"tx-rules": rulesYAML, "per-event-only": perEventRulesYAML} {
		t.Run(name, func(t *testing.T) { testResubscribe(t, rules) })
	}
}

func testResubscribe(t *testing.T, rules string) {
	k := stack.StartKFake(t)
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	n := newNames(t)
	s := &lowStore{t: t, db: db}
	exp := newExpectation()
	lsn := uint64(0)
	r := start(t, config(kurrentdbtest.Store(t, srv.URL()), loadRulesText(t, n, rules), k, n, kafka.ExactlyOnce))
	for i := 0; i < 10; i++ {
		exp.customers(s, &lsn, 30)
		s.appendOne(2000+uint64(i), 0, lowEvent{fmt.Sprintf("other-%d", i), "SomethingElse", map[string]any{"i": i}})
		exp.customers(s, &lsn, 1)
		srv.DropSubscriptions()
	}
	r.waitThrough(t, s.last)
	exp.check(t, readTopic(t, k, n.customers))
	if st := r.p.Stats(); st.Records != 310 {
		t.Errorf("stats %+v; want 310 records", st)
	}
}

// TestZombieIsFenced: a second publisher with the same identity fences the
// first; the first's Run ends with ErrFenced and none of its later writes
// are visible; every event is seen exactly once.
func TestZombieIsFenced(t *testing.T) {
	k := stack.StartKafka(t)
	db, n, s := startStore(t)
	rs := loadRules(t, n)
	exp := newExpectation()
	lsn := uint64(0)
	exp.customers(s, &lsn, 40)
	old := start(t, config(db, rs, k, n, kafka.ExactlyOnce))
	old.waitThrough(t, s.last)
	cur := start(t, config(db, rs, k, n, kafka.ExactlyOnce))
	cur.waitThrough(t, s.last)
	exp.customers(s, &lsn, 40) // both see these; only cur may publish them
	if err := old.wait(t, time.Minute); !errors.Is(err, kafka.ErrFenced) {
		t.Fatalf("old publisher's Run = %v; want ErrFenced", err)
	}
	cur.waitThrough(t, s.last)
	exp.check(t, readTopic(t, k, n.customers))
}

// TestAtLeastOnceRestarts: in at-least-once mode, after repeated stops
// nothing is missing, and duplicates carry equal ce_id and value.
func TestAtLeastOnceRestarts(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	rs := loadRules(t, n)
	exp := newExpectation()
	lsn := uint64(0)
	for i := 0; i < 5; i++ {
		r := start(t, config(db, rs, k, n, kafka.AtLeastOnce))
		exp.customers(s, &lsn, 60)
		if i%2 == 0 {
			r.waitThrough(t, s.last)
		}
		_ = r.stop(t)
	}
	r := start(t, config(db, rs, k, n, kafka.AtLeastOnce))
	r.waitThrough(t, s.last)
	recs := readTopic(t, k, n.customers)
	values := map[string]string{}
	for _, rec := range recs {
		id := header(rec, kafka.HeaderID)
		if !exp.ids[id] {
			t.Errorf("unexpected ce_id %s", id)
		}
		if v, ok := values[id]; ok && v != string(rec.Value) {
			t.Errorf("duplicate ce_id %s with a different value: %s vs %s", id, v, rec.Value)
		}
		values[id] = string(rec.Value)
	}
	for id := range exp.ids {
		if _, ok := values[id]; !ok {
			t.Errorf("ce_id %s missing", id)
		}
	}
	t.Logf("at-least-once: %d records for %d events", len(recs), len(exp.ids))
}
