package publish_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// deleteTopic deletes topic on the broker and waits until the broker no
// longer lists it.
func deleteTopic(t *testing.T, k *stack.Kafka, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(k.Client(t))
	resp, err := adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("deleting topic %s: %v", topic, err)
	}
	for {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil && !td.Has(topic) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("topic %s still listed a minute after its deletion", topic)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
	}
}

// TestDeletedTopicIsRecreated: an output topic deleted under a running
// publisher (real broker) is re-created with kafka.CreateTopics, and the
// events stored after the deletion reach it, each once, in store order.
func TestDeletedTopicIsRecreated(t *testing.T) {
	k := stack.StartRealKafka(t) // kfake deletes topics otherwise: the publisher never got past the deletion there
	db, n, s := startStore(t)
	lsn := uint64(0)
	before := newExpectation()
	before.customers(s, &lsn, 20)
	r := start(t, config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce))
	r.waitThrough(t, s.last)
	before.check(t, readTopic(t, k, n.customers))

	deleteTopic(t, k, n.customers)
	after := newExpectation()
	after.customers(s, &lsn, 20)
	r.waitThrough(t, s.last)
	after.check(t, readTopic(t, k, n.customers))
}

// TestDeletedTopicFailsRun: without kafka.CreateTopics, an output topic
// deleted under a running publisher (real broker) stops Run with a
// *kafka.TopicError naming it, instead of retrying forever.
func TestDeletedTopicFailsRun(t *testing.T) {
	k := stack.StartKafka(t)
	db, n, s := startStore(t)
	lsn := uint64(0)
	exp := newExpectation()
	exp.customers(s, &lsn, 20)
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	r := start(t, cfg) // creates the topics
	r.waitThrough(t, s.last)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.CreateTopics = false
	r = start(t, cfg)
	exp.customers(s, &lsn, 5)
	r.waitThrough(t, s.last) // running, past its start-up checks
	deleteTopic(t, k, n.customers)
	exp.customers(s, &lsn, 5)
	err := r.wait(t, 2*time.Minute)
	var te *kafka.TopicError
	if !errors.As(err, &te) || te.Topic != n.customers {
		t.Fatalf("Run = %v; want a *kafka.TopicError naming %s", err, n.customers)
	}
}
