package publish_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// swappedRulesYAML promotes CustomerChanged with another type, and also
// CustomerRenamed: another server filter than perEventRulesYAML, so the
// swap restarts the subscription.
const swappedRulesYAML = `
promote:
  - name: customer-changed-v2
    from: [CustomerChanged, CustomerRenamed]
    topic: {{customers}}
    type: crm.customer.changed.v2
    value: {id: event.data.id, seq: event.data.seq}
`

// TestSwapRulesBetweenBatches: events read before a swap are published
// with the old rules, events after it with the new ones, each exactly once
// (the subscription restarted for the new filter neither skips nor repeats
// an event).
func TestSwapRulesBetweenBatches(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	exp.customers(s, &lsn, 40)
	r := start(t, config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce))
	r.waitThrough(t, s.last)

	took := r.p.SwapRules(loadRulesText(t, n, swappedRulesYAML))
	select {
	case <-took:
	case <-time.After(30 * time.Second):
		t.Fatal("the swap did not take effect within 30s of an idle publisher")
	}
	exp.customers(s, &lsn, 40)
	s.appendTx(lsn+1, lowEvent{"customer-9", "CustomerRenamed", map[string]any{"id": 9, "seq": 0}})
	r.waitThrough(t, s.last)

	recs := readTopic(t, k, n.customers)
	if len(recs) != 81 {
		t.Fatalf("%d records, want 81 (40 before the swap, 40 + 1 renamed after)", len(recs))
	}
	seen := map[string]int{}
	for _, rec := range recs {
		seen[header(rec, kafka.HeaderID)]++
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("ce_id %s published %d times", id, c)
		}
	}
	// By type: the 40 events stored before the swap with v1, the rest v2.
	v1, v2 := 0, 0
	for _, rec := range recs {
		switch header(rec, kafka.HeaderType) {
		case "crm.customer.changed.v1":
			v1++
		case "crm.customer.changed.v2":
			v2++
		default:
			t.Errorf("record type %q", header(rec, kafka.HeaderType))
		}
	}
	if v1 != 40 || v2 != 41 {
		t.Errorf("v1 %d, v2 %d records; want 40 with the old rules and 41 with the new ones ", v1, v2)
	}
}

// TestGraceCommitsTheOpenBatch: with Config.Grace, a batch handled but not
// yet committed when Run's context ends is committed before Run returns;
// without it, it is left for the next run.
func TestGraceCommitsTheOpenBatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		want  int
	}{{"grace", 10 * time.Second, 30}, {"no-grace", 0, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			k := stack.StartKFake(t)
			db, n, s := startStore(t)
			exp := newExpectation()
			lsn := uint64(0)
			cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
			cfg.BatchInterval, cfg.BatchRecords, cfg.Grace = time.Hour, 1000, tc.grace
			r := start(t, cfg)
			exp.customers(s, &lsn, 30)
			// Events are handled but no batch is due for an hour.
			r.waitPending(t, 30)
			if err := r.stop(t); err != nil {
				t.Fatalf("Run after cancel: %v", err)
			}
			if lag := r.p.LagSeconds(); lag != 0 {
				t.Errorf("lag after Run returned: %v, want 0", lag)
			}
			recs := readTopic(t, k, n.customers)
			if len(recs) != tc.want {
				t.Fatalf("%d records committed at the stop, want %d", len(recs), tc.want)
			}
			if tc.want > 0 {
				exp.check(t, recs)
			}
		})
	}
}

// TestGraceExpiredLeavesTheBatch: when the open batch cannot be committed
// within Config.Grace (the broker does not answer Produce), Run returns a
// *GraceError (ErrGraceExpired) counting the batch's records, and nothing of
// it is committed; the next run publishes every event exactly once.
func TestGraceExpiredLeavesTheBatch(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	cfg.BatchInterval, cfg.BatchRecords, cfg.Grace = time.Hour, 1000, 200*time.Millisecond
	r := start(t, cfg)
	exp.customers(s, &lsn, 30)
	r.waitPending(t, 30)
	release := make(chan struct{})
	var once sync.Once
	unstall := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unstall)
	k.Fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		k.Fake.SleepControl(func() { <-release })
		return nil, nil, false
	})
	err := r.stop(t)
	var ge *publish.GraceError
	if !errors.As(err, &ge) || !errors.Is(err, publish.ErrGraceExpired) || ge.Records != 30 || ge.Grace != cfg.Grace {
		t.Fatalf("Run after cancel with the broker stalled: %v; want a *GraceError (ErrGraceExpired) for 30 records", err)
	}
	if st := r.p.Stats(); st.Commits != 0 || st.Records != 0 {
		t.Fatalf("stats %+v: want nothing committed", st)
	}
	unstall()
	cfg.Grace = 0
	cfg.BatchInterval = 20 * time.Millisecond
	r = start(t, cfg)
	r.waitThrough(t, s.last)
	exp.check(t, readTopic(t, k, n.customers))
}

// TestFlushWhenIdleCommitsWithoutWaiting: with FlushWhenIdle, a batch is
// committed as soon as nothing more is queued, although BatchInterval is an
// hour and the batch is far from full; every event exactly once.
func TestFlushWhenIdleCommitsWithoutWaiting(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	cfg.BatchInterval, cfg.BatchRecords, cfg.FlushWhenIdle = time.Hour, 1000, true
	r := start(t, cfg)
	exp.customers(s, &lsn, 30)
	r.waitThrough(t, s.last)
	if st := r.p.Stats(); st.Records != 30 || st.Commits < 1 {
		t.Fatalf("stats %+v: want 30 records in at least one commit", st)
	}
	exp.check(t, readTopic(t, k, n.customers))
}
