package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// fakeSink records commits instead of writing to Kafka. failNext makes
// the next commit fail; landed says whether that failed commit landed
// anyway (an unknown outcome that the checkpoint read-back settles).
type fakeSink struct {
	commits  [][]*kgo.Record
	cps      []kafka.Checkpoint
	failNext error
	landed   bool
	topics   []string
}

func (f *fakeSink) EnsureTopics(_ context.Context, _ *kafka.ClusterConfig, topics []string) error {
	f.topics = append(f.topics, topics...)
	return nil
}

func (f *fakeSink) EnsureCheckpointTopic(context.Context) error { return nil }

func (f *fakeSink) Checkpoint(context.Context) (kafka.Checkpoint, bool, error) {
	if len(f.cps) == 0 {
		return kafka.Checkpoint{}, false, nil
	}
	return f.cps[len(f.cps)-1], true, nil
}

func (f *fakeSink) Commit(_ context.Context, recs []*kgo.Record, cp kafka.Checkpoint) error {
	if err := f.failNext; err != nil {
		f.failNext = nil
		if f.landed {
			f.commits, f.cps = append(f.commits, append([]*kgo.Record(nil), recs...)), append(f.cps, cp)
		}
		return err
	}
	f.commits, f.cps = append(f.commits, append([]*kgo.Record(nil), recs...)), append(f.cps, cp)
	return nil
}

const loopRules = `
promote:
  - name: customer-changed
    from: [CustomerChanged]
    topic: customers
    type: crm.customer.changed.v1
    value: {id: event.data.id}
  - name: order-placed
    scope: transaction
    from: OrderInserted
    topic: orders
    key: event.data.orderId
    type: shop.order.placed.v1
    value: {orderId: event.data.orderId}
`

func newTestLoop(t *testing.T, w sink) *loop {
	t.Helper()
	rs, err := mapping.LoadBytes("rules.yaml", []byte(loopRules), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Store: &store.Client{}, Rules: rs, PublisherID: "p", Kafka: kafka.ClusterConfig{Brokers: []string{"b:9092"}},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cp, ok, _ := w.Checkpoint(context.Background())
	return newLoop(p, w, cp, ok, nil)
}

// event is a stored event of source transaction lsn at $all position pos.
func event(t *testing.T, typ, stream string, lsn uint64, ordinal uint64, pos uint64, data string) *store.Recorded {
	t.Helper()
	src := contract.Source{Slot: "s", Pos: contract.Pos{CommitLSN: contract.LSN(lsn), Ordinal: ordinal}, CommitTime: time.Unix(1, 0)}
	meta, err := contract.AppendMetadata(nil, &src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &store.Recorded{ID: uuid.New(), Stream: stream, Type: typ, Data: []byte(data), Metadata: meta,
		Pos: contract.StorePos{Commit: pos, Prepare: pos}, Created: time.Unix(2, 0)}
}

func marker(lsn, pos uint64) *store.Recorded {
	return &store.Recorded{ID: uuid.New(), Stream: contract.ProgressStream("s"), Type: contract.ProgressType,
		Data: contract.EncodeProgress(contract.Progress{Slot: "s", DurableLSN: contract.LSN(lsn)}), Pos: contract.StorePos{Commit: pos, Prepare: pos}}
}

// TestLoopCheckpoints: the checkpoint a batch commits with is through the
// last event handled, and, while a source transaction is open (with a
// transaction rule every event is buffered until its marker), resumes
// before the first event of the oldest one; the marker that completes a
// transaction emits its record.
func TestLoopCheckpoints(t *testing.T) {
	w := &fakeSink{}
	l := newTestLoop(t, w)
	ctx := context.Background()
	handle := func(evs ...*store.Recorded) {
		t.Helper()
		for _, ev := range evs {
			if err := l.handle(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	handle(event(t, "CustomerChanged", "customer-1", 10, 0, 100, `{"id":1}`))
	handle(event(t, "OrderInserted", "order-7", 20, 0, 200, `{"orderId":7}`),
		event(t, "CustomerChanged", "customer-2", 30, 0, 300, `{"id":2}`))
	handle(marker(20, 400)) // completes transactions 10 and 20; 30 stays open

	want := []struct {
		through uint64
		resume  *contract.StoreFrom
		topics  []string
	}{
		{100, &contract.StoreFrom{Start: true}, []string{"customers"}},
		{300, &contract.StoreFrom{Start: true}, []string{"customers"}},
		{400, &contract.StoreFrom{StorePos: contract.StorePos{Commit: 200, Prepare: 200}}, []string{"orders"}},
	}
	if len(w.cps) != len(want) {
		t.Fatalf("%d commits; want %d", len(w.cps), len(want))
	}
	for i, c := range want {
		cp := w.cps[i]
		if cp.Commit != c.through || (cp.Resume == nil) != (c.resume == nil) || (cp.Resume != nil && *cp.Resume != *c.resume) {
			t.Errorf("commit %d: checkpoint %+v resume %+v; want through %d resume %+v", i, cp, cp.Resume, c.through, c.resume)
		}
		var topics []string
		for _, r := range w.commits[i] {
			topics = append(topics, r.Topic)
		}
		if fmt.Sprint(topics) != fmt.Sprint(c.topics) {
			t.Errorf("commit %d: records to %v; want %v", i, topics, c.topics)
		}
	}
	if st := l.p.Stats(); st.Records != 3 || st.Events != 4 || st.Commits != 3 || st.Through.Commit != 400 {
		t.Errorf("stats %+v; want 3 records of 4 events in 3 commits, through 400", st)
	}
}

// TestLoopRestartSuppressesWhatWasPublished: a loop started from a
// checkpoint re-reads from its resume position and publishes only what
// comes after through, and the transaction completed after it.
func TestLoopRestartSuppressesWhatWasPublished(t *testing.T) {
	w := &fakeSink{cps: []kafka.Checkpoint{{StorePos: contract.StorePos{Commit: 300, Prepare: 300},
		Resume: &contract.StoreFrom{StorePos: contract.StorePos{Commit: 100, Prepare: 100}}}}}
	l := newTestLoop(t, w)
	if l.last != *w.cps[0].Resume {
		t.Fatalf("the loop starts after %v; want the checkpoint's resume position", l.last)
	}
	for _, ev := range []*store.Recorded{
		event(t, "OrderInserted", "order-7", 20, 0, 200, `{"orderId":7}`),
		event(t, "CustomerChanged", "customer-2", 30, 0, 300, `{"id":2}`), // published before the restart
		marker(20, 400),
		event(t, "CustomerChanged", "customer-3", 40, 0, 500, `{"id":3}`),
	} {
		if err := l.handle(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range w.commits[0] {
		got = append(got, r.Topic+"/"+string(r.Key))
	}
	if fmt.Sprint(got) != "[orders/7 customers/3]" {
		t.Errorf("records %v; want the order and customer 3 only", got)
	}
}

// TestLoopCommitOutcomes: a failed commit that landed (its checkpoint
// reads back) counts as committed, once; a fenced writer stops the loop.
func TestLoopCommitOutcomes(t *testing.T) {
	w := &fakeSink{failNext: errors.New("broker went away during EndTransaction"), landed: true}
	l := newTestLoop(t, w)
	if err := l.handle(event(t, "CustomerChanged", "customer-1", 10, 0, 100, `{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.commits) != 1 || l.p.Stats().Commits != 1 {
		t.Fatalf("%d commits stored, %d counted; want the landed one once", len(w.commits), l.p.Stats().Commits)
	}
	w.failNext, w.landed = kafka.ErrFenced, false
	if err := l.handle(event(t, "CustomerChanged", "customer-1", 11, 0, 110, `{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.flush(context.Background()); !errors.Is(err, kafka.ErrFenced) {
		t.Fatalf("flush = %v; want ErrFenced", err)
	}
}
