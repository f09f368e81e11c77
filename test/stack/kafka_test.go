package stack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestKafkaTransactions proves the cluster supports what the publisher needs:
// a transactional producer's committed records are visible to a
// read_committed consumer, an aborted transaction's records are not (though
// they are in the log, which a read_uncommitted consumer shows).
func TestKafkaTransactions(t *testing.T) {
	t.Run("real", func(t *testing.T) {
		k := stack.StartKafka(t)
		if k.Kind != "real" {
			t.Fatalf("CHRONICLER_TEST_KAFKA selects %s; this subtest is for the real broker", k.Kind)
		}
		testTransactions(t, k)
	})
	t.Run("kfake", func(t *testing.T) {
		testTransactions(t, stack.StartKFake(t))
	})
}

func testTransactions(t *testing.T, k *stack.Kafka) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := fmt.Sprintf("stack-selftest-%d", time.Now().UnixNano())

	adm := kadm.NewClient(k.Client(t))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}

	prod := k.Client(t, kgo.TransactionalID(topic+"-tx"), kgo.DefaultProduceTopic(topic))
	produce := func(commit bool, values ...string) {
		t.Helper()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := prod.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("producing %s: %v", v, err)
			}
		}
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("ending transaction (commit=%v): %v", commit, err)
		}
	}
	produce(true, "c1", "c2")
	produce(false, "a1", "a2", "a3")
	produce(true, "c3")

	committed := consume(t, ctx, k, topic, kgo.ReadCommitted(), 3)
	if got := strings.Join(committed, ","); got != "c1,c2,c3" {
		t.Fatalf("read_committed saw %s; want c1,c2,c3", got)
	}
	all := consume(t, ctx, k, topic, kgo.ReadUncommitted(), 6)
	if got := strings.Join(all, ","); got != "c1,c2,a1,a2,a3,c3" {
		t.Fatalf("read_uncommitted saw %s; want c1,c2,a1,a2,a3,c3", got)
	}
}

// consume reads topic from the start until want records arrived. Records that
// should not be visible would show up among the first want (the producers
// wrote them before the last visible one), so the callers' exact comparison
// catches them.
func consume(t *testing.T, ctx context.Context, k *stack.Kafka, topic string, iso kgo.IsolationLevel, want int) []string {
	t.Helper()
	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %v before the deadline; want %d records", got, want)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestKafkaBrokerRestart proves a dedicated broker can be stopped and started
// again with its data, which the publisher's fault tests rely on.
func TestKafkaBrokerRestart(t *testing.T) {
	b := stack.StartKafkaBroker(t)
	k := &stack.Kafka{Brokers: []string{b.Addr}, Kind: "real", Broker: b}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topic := "restart-selftest"
	cl := k.Client(t, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b.Stop()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatalf("producing after restart: %v", err)
	}
	if got := strings.Join(consume(t, ctx, k, topic, kgo.ReadCommitted(), 2), ","); got != "before,after" {
		t.Fatalf("after restart saw %s; want before,after", got)
	}
}
