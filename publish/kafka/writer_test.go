package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// onClusters runs f against the real broker of the test stack and kfake.
func onClusters(t *testing.T, f func(t *testing.T, k *stack.Kafka)) {
	t.Run("real", func(t *testing.T) { f(t, stack.StartKafka(t)) })
	t.Run("kfake", func(t *testing.T) { f(t, stack.StartKFake(t)) })
}

var seq atomic.Int64

// names returns a topic, a checkpoint topic and a publisher id unique to this
// run, so tests can share a broker.
func names(t *testing.T) (topic, cpTopic, id string) {
	n := fmt.Sprintf("%s-%d-%d", strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()), time.Now().UnixNano(), seq.Add(1))
	return "events-" + n, "checkpoints-" + n, "pub-" + n
}

func newWriter(t *testing.T, ctx context.Context, k *stack.Kafka, cpTopic, id string, mode kafka.Mode, opts ...kgo.Opt) *kafka.Writer {
	t.Helper()
	w, err := kafka.New(ctx, kafka.Config{Brokers: k.Brokers, PublisherID: id, CheckpointTopic: cpTopic, Mode: mode, ClientOpts: opts})
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

func createTopic(t *testing.T, ctx context.Context, k *stack.Kafka, topic string) {
	t.Helper()
	if _, err := kadm.NewClient(k.Client(t)).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
}

func recs(topic string, values ...string) []*kgo.Record {
	out := make([]*kgo.Record, len(values))
	for i, v := range values {
		out[i] = &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(v)}
	}
	return out
}

// readCommitted returns the values of the first n records a read_committed
// consumer sees in topic.
func readCommitted(t *testing.T, ctx context.Context, k *stack.Kafka, topic string, n int) []string {
	t.Helper()
	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v from %s before the deadline; want %d records", got, topic, n)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got[:n]
}

func checkpoint(t *testing.T, ctx context.Context, w *kafka.Writer) (kafka.Checkpoint, bool) {
	t.Helper()
	cp, ok, err := w.Checkpoint(ctx)
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return cp, ok
}

// TestCommitWritesRecordsAndCheckpoint: committed batches are visible to
// read_committed consumers in order, and the checkpoint a new instance reads
// back is the last committed one.
func TestCommitWritesRecordsAndCheckpoint(t *testing.T) {
	onClusters(t, func(t *testing.T, k *stack.Kafka) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		topic, cpTopic, id := names(t)
		createTopic(t, ctx, k, topic)
		w := newWriter(t, ctx, k, cpTopic, id, kafka.ExactlyOnce)
		if cp, ok := checkpoint(t, ctx, w); ok {
			t.Fatalf("fresh publisher has checkpoint %+v", cp)
		}
		if err := w.Commit(ctx, recs(topic, "a", "b", "c"), kafka.Checkpoint{StorePos: contract.StorePos{Commit: 10, Prepare: 10}}); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx, recs(topic, "d", "e"), kafka.Checkpoint{StorePos: contract.StorePos{Commit: 20, Prepare: 19}}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(readCommitted(t, ctx, k, topic, 5), ","); got != "a,b,c,d,e" {
			t.Fatalf("consumer saw %s; want a,b,c,d,e", got)
		}
		w.Close()
		w2 := newWriter(t, ctx, k, cpTopic, id, kafka.ExactlyOnce)
		if cp, ok := checkpoint(t, ctx, w2); !ok || cp != (kafka.Checkpoint{StorePos: contract.StorePos{Commit: 20, Prepare: 19}}) {
			t.Fatalf("checkpoint after restart = %+v, %v; want {20 19}", cp, ok)
		}
	})
}

// TestCommitDoesNotWaitForLinger: a batch is whole when Commit is called,
// so its records are sent at once, never after the producer's linger (a
// minute here, franz-go's most; its default is 10 ms, which every commit
// used to wait out): both modes commit three batches, and a consumer reads
// them, within half the linger.
func TestCommitDoesNotWaitForLinger(t *testing.T) {
	onClusters(t, func(t *testing.T, k *stack.Kafka) {
		for _, mode := range []kafka.Mode{kafka.ExactlyOnce, kafka.AtLeastOnce} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			topic, cpTopic, id := names(t)
			createTopic(t, ctx, k, topic)
			w := newWriter(t, ctx, k, cpTopic, id, mode, kgo.ProducerLinger(time.Minute))
			for i := range 3 {
				if err := w.Commit(ctx, recs(topic, fmt.Sprint(i)), kafka.Checkpoint{StorePos: contract.StorePos{Commit: uint64(i), Prepare: uint64(i)}}); err != nil {
					t.Fatalf("%s: commit %d with a one-minute linger: %v", mode, i, err)
				}
			}
			if got := strings.Join(readCommitted(t, ctx, k, topic, 3), ","); got != "0,1,2" {
				t.Fatalf("%s: consumer saw %s; want 0,1,2", mode, got)
			}
		}
	})
}

// TestZombieIsFenced: when a second instance starts with the same publisher
// id, the first one's next commit fails with ErrFenced and its records are
// never visible; the second one's are.
func TestZombieIsFenced(t *testing.T) {
	onClusters(t, func(t *testing.T, k *stack.Kafka) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		topic, cpTopic, id := names(t)
		createTopic(t, ctx, k, topic)
		old := newWriter(t, ctx, k, cpTopic, id, kafka.ExactlyOnce)
		if err := old.Commit(ctx, recs(topic, "old-1"), kafka.Checkpoint{StorePos: contract.StorePos{Commit: 1, Prepare: 1}}); err != nil {
			t.Fatal(err)
		}
		cur := newWriter(t, ctx, k, cpTopic, id, kafka.ExactlyOnce)
		err := old.Commit(ctx, recs(topic, "zombie-1", "zombie-2"), kafka.Checkpoint{StorePos: contract.StorePos{Commit: 5, Prepare: 5}})
		if !errors.Is(err, kafka.ErrFenced) {
			t.Fatalf("zombie commit error = %v; want ErrFenced", err)
		}
		if err := cur.Commit(ctx, recs(topic, "new-1"), kafka.Checkpoint{StorePos: contract.StorePos{Commit: 7, Prepare: 7}}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(readCommitted(t, ctx, k, topic, 2), ","); got != "old-1,new-1" {
			t.Fatalf("consumer saw %s; want old-1,new-1 (no zombie records)", got)
		}
		if cp, _ := checkpoint(t, ctx, cur); cp.Commit != 7 {
			t.Fatalf("checkpoint = %+v; want commit 7", cp)
		}
	})
}

// TestOpenTransactionOfCrashedInstanceIsAborted: an instance that crashed
// inside a transaction leaves records in the log; the next instance's start
// aborts that transaction, so they are never visible and the stable offset
// moves on (later commits become visible at once, not after the
// transaction timeout).
func TestOpenTransactionOfCrashedInstanceIsAborted(t *testing.T) {
	onClusters(t, func(t *testing.T, k *stack.Kafka) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		topic, cpTopic, id := names(t)
		createTopic(t, ctx, k, topic)
		w := newWriter(t, ctx, k, cpTopic, id, kafka.ExactlyOnce)
		if err := w.Commit(ctx, recs(topic, "before"), kafka.Checkpoint{StorePos: contract.StorePos{Commit: 3, Prepare: 3}}); err != nil {
			t.Fatal(err)
		}
		w.Close()

		// The crashed instance: same transactional id, records acknowledged
		// inside a transaction that never ends. Its client is left open, as a
		// process killed with SIGKILL would leave its transaction.
		crashed := k.Client(t, kgo.TransactionalID(kafka.TransactionalID(id)), kgo.TransactionTimeout(time.Minute))
		if err := crashed.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := crashed.ProduceSync(ctx, recs(topic, "lost-1", "lost-2")...).FirstErr(); err != nil {
			t.Fatal(err)
		}

		next := newWriter(t, ctx, k, cpTopic, id, kafka.ExactlyOnce)
		if cp, _ := checkpoint(t, ctx, next); cp.Commit != 3 {
			t.Fatalf("checkpoint = %+v; want the last committed one, commit 3", cp)
		}
		if err := next.Commit(ctx, recs(topic, "after"), kafka.Checkpoint{StorePos: contract.StorePos{Commit: 4, Prepare: 4}}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(readCommitted(t, ctx, k, topic, 2), ","); got != "before,after" {
			t.Fatalf("consumer saw %s; want before,after", got)
		}
	})
}

// TestAtLeastOnceCheckpointsAfterRecords: without transactions, records and
// checkpoint are both written and the checkpoint reads back.
func TestAtLeastOnceCheckpointsAfterRecords(t *testing.T) {
	onClusters(t, func(t *testing.T, k *stack.Kafka) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		topic, cpTopic, id := names(t)
		createTopic(t, ctx, k, topic)
		w := newWriter(t, ctx, k, cpTopic, id, kafka.AtLeastOnce)
		if err := w.Commit(ctx, recs(topic, "x", "y"), kafka.Checkpoint{StorePos: contract.StorePos{Commit: 9, Prepare: 9}}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(readCommitted(t, ctx, k, topic, 2), ","); got != "x,y" {
			t.Fatalf("consumer saw %s; want x,y", got)
		}
		if cp, ok := checkpoint(t, ctx, w); !ok || cp.Commit != 9 {
			t.Fatalf("checkpoint = %+v, %v; want commit 9", cp, ok)
		}
	})
}

func TestConfigErrorsAreCollected(t *testing.T) {
	_, err := kafka.New(context.Background(), kafka.Config{PublisherID: "bad id!", Mode: kafka.Mode(7)})
	if err == nil {
		t.Fatal("New accepted an invalid config")
	}
	for _, want := range []string{"kafka.brokers", "publisher id", "delivery mode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestCheckpointResumeRoundTrip: the resume position committed with a
// checkpoint reads back unchanged, and a checkpoint without one reads back
// with none.
func TestCheckpointResumeRoundTrip(t *testing.T) {
	k := stack.StartKFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic, cpTopic, id := names(t)
	createTopic(t, ctx, k, topic)
	w := newWriter(t, ctx, k, cpTopic, id, kafka.ExactlyOnce)
	for _, want := range []kafka.Checkpoint{
		{StorePos: contract.StorePos{Commit: 50, Prepare: 50}, Resume: &contract.StoreFrom{Start: true}},
		{StorePos: contract.StorePos{Commit: 90, Prepare: 89}, Resume: &contract.StoreFrom{StorePos: contract.StorePos{Commit: 40, Prepare: 39}}},
		{StorePos: contract.StorePos{Commit: 95, Prepare: 95}},
	} {
		if err := w.Commit(ctx, recs(topic, "v"), want); err != nil {
			t.Fatal(err)
		}
		got, ok := checkpoint(t, ctx, w)
		if !ok || got.Commit != want.Commit || got.Prepare != want.Prepare || (got.Resume == nil) != (want.Resume == nil) ||
			(got.Resume != nil && *got.Resume != *want.Resume) {
			t.Fatalf("checkpoint read back %+v (resume %+v); want %+v (resume %+v)", got, got.Resume, want, want.Resume)
		}
	}
}

// TestUnreachableBrokerIsNamedAsSuch: with no broker answering, New fails
// with an *UnreachableError naming the brokers and the connection settings,
// not advice to create the checkpoint topic.
func TestUnreachableBrokerIsNamedAsSuch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := kafka.New(ctx, kafka.Config{Brokers: []string{"127.0.0.1:1"}, PublisherID: "p", ClientOpts: []kgo.Opt{kgo.RequestRetries(1)}})
	var ue *kafka.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "127.0.0.1:1") || strings.Contains(err.Error(), "create it yourself") {
		t.Fatalf("New with no broker: %v; want an *UnreachableError naming the broker, without the create-the-topic advice", err)
	}
}
