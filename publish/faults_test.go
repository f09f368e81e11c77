package publish_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestCommitFailuresAreRetriedOnce: the broker drops the connection on the
// first EndTxn requests (the commit's outcome is unknown to the client);
// the publisher resolves each by reading the checkpoint back and retrying,
// and the consumer sees every event exactly once.
func TestCommitFailuresAreRetriedOnce(t *testing.T) {
	k := stack.StartKFake(t)
	var failed atomic.Int32
	k.Fake.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Fake.KeepControl()
		if failed.Add(1) <= 3 {
			return nil, errors.New("injected: connection lost during EndTxn"), true
		}
		return nil, nil, false
	})
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	exp.customers(s, &lsn, 200)
	r := start(t, config(db, loadRules(t, n), k, n, kafka.ExactlyOnce))
	exp.customers(s, &lsn, 200)
	r.waitThrough(t, s.last)
	if failed.Load() <= 3 {
		t.Fatalf("%d EndTxn requests; the fault was not injected", failed.Load())
	}
	exp.check(t, readTopic(t, k, n.customers))
}

// TestBrokerStallIsBackpressure: while the broker does not answer Produce,
// the publisher commits nothing (its checkpoint stays put) and loses
// nothing: once the broker answers again, every event is published once.
func TestBrokerStallIsBackpressure(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	exp.customers(s, &lsn, 50)
	r := start(t, config(db, loadRules(t, n), k, n, kafka.ExactlyOnce))
	r.waitThrough(t, s.last)
	before := r.p.Stats()

	release := make(chan struct{})
	stalled := make(chan struct{}, 1)
	k.Fake.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case stalled <- struct{}{}:
		default:
		}
		k.Fake.SleepControl(func() { <-release })
		return nil, nil, false
	})
	exp.customers(s, &lsn, 300)
	select {
	case <-stalled:
	case <-time.After(time.Minute):
		t.Fatal("the publisher never produced after the stall began")
	}
	if st := r.p.Stats(); st.Through != before.Through || st.Records != before.Records {
		t.Fatalf("committed during the stall: %+v; before %+v", st, before)
	}
	close(release)
	r.waitThrough(t, s.last)
	exp.check(t, readTopic(t, k, n.customers))
}

// TestMissingTopicsStopAtStart: without CreateTopics, every missing topic
// (the rules' and the dead-letter topic) is reported at start as a
// *TopicError naming it, and Run stops.
func TestMissingTopicsStopAtStart(t *testing.T) {
	k := stack.StartKafka(t)
	db, n, _ := startStore(t)
	cfg := config(db, loadRules(t, n), k, n, kafka.ExactlyOnce)
	cfg.Kafka.CreateTopics = false
	err := start(t, cfg).wait(t, time.Minute)
	missing := map[string]bool{}
	for _, e := range unjoin(err) {
		var te *kafka.TopicError
		if errors.As(e, &te) {
			missing[te.Topic] = true
		}
	}
	if len(missing) != 3 || !missing[n.customers] || !missing[n.orders] || !missing[n.dead] {
		t.Fatalf("Run = %v; want a TopicError for each of %s, %s, %s", err, n.customers, n.orders, n.dead)
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestStopOnDeadLetter: with StopOnDeadLetter, an event a promotion fails
// on stops Run with a *DeadLetterError naming the event, stream and rule,
// and nothing is dead-lettered.
func TestStopOnDeadLetter(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	exp.customers(s, &lsn, 10)
	broken := s.appendTx(99, lowEvent{"customer-7", "CustomerBroken", map[string]any{"email": "x"}})[0]
	cfg := config(db, loadRules(t, n), k, n, kafka.ExactlyOnce)
	cfg.StopOnDeadLetter = true
	err := start(t, cfg).wait(t, time.Minute)
	var dl *publish.DeadLetterError
	if !errors.As(err, &dl) || dl.EventID != broken || dl.Stream != "customer-7" || dl.Rule != "customer-broken" {
		t.Fatalf("Run = %v; want a DeadLetterError for event %s in customer-7, rule customer-broken", err, broken)
	}
	if got := readTopic(t, k, n.dead); len(got) != 0 {
		t.Fatalf("%d dead letters written; want none when stopping", len(got))
	}
}
