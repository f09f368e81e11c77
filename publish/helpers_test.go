package publish_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

const testSlot = "slot1"

var seq atomic.Int64

// uniq is a name unique to this test run, so tests can share a broker.
func uniq(t *testing.T) string {
	return fmt.Sprintf("%s-%d-%d", strings.NewReplacer("/", "-", "_", "-", "=", "-").Replace(t.Name()), time.Now().UnixNano(), seq.Add(1))
}

// names of one test's topics.
type names struct{ customers, orders, dead, cp, id string }

func newNames(t *testing.T) names {
	n := uniq(t)
	return names{"customers-" + n, "orders-" + n, "dead-" + n, "cp-" + n, "pub-" + n}
}

const rulesYAML = `
promote:
  - name: customer-changed
    from: [CustomerChanged]
    topic: {{customers}}
    type: crm.customer.changed.v1
    value: {id: event.data.id, email: event.data.email, seq: event.data.seq}
    headers: {change: kebab(event.type)}
  - name: customer-broken
    from: [CustomerBroken]
    topic: {{customers}}
    type: crm.customer.broken.v1
    value: {n: int(event.data.email)}
  - name: order-placed
    scope: transaction
    from: OrderInserted
    topic: {{orders}}
    key: event.data.orderId
    type: shop.order.placed.v1
    value: {orderId: event.data.orderId, lines: 'map(filter(events, .type == "OrderLineInserted"), .data.sku)'}
`

func loadRules(t *testing.T, n names) *mapping.RuleSet {
	t.Helper()
	return loadRulesText(t, n, rulesYAML)
}

// perEventRulesYAML has no transaction rule, so the subscription filters
// on the server by event type.
const perEventRulesYAML = `
promote:
  - name: customer-changed
    from: [CustomerChanged]
    topic: {{customers}}
    type: crm.customer.changed.v1
    value: {id: event.data.id, email: event.data.email, seq: event.data.seq}
`

func loadRulesText(t *testing.T, n names, text string) *mapping.RuleSet {
	t.Helper()
	y := strings.NewReplacer("{{customers}}", n.customers, "{{orders}}", n.orders).Replace(text)
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := mapping.Load([]string{p}, mapping.Options{})
	if err != nil {
		t.Fatalf("loading rules: %v", err)
	}
	return rs
}

func config(db *store.Client, rs *mapping.RuleSet, k *stack.Kafka, n names, mode kafka.Mode) publish.Config {
	return publish.Config{
		Store: db, Rules: rs, PublisherID: n.id, Mode: mode, CheckpointTopic: n.cp, DeadLetterTopic: n.dead,
		Kafka:        kafka.ClusterConfig{Brokers: k.Brokers, CreateTopics: true, Partitions: 3, ReplicationFactor: 1, MaxRecordBytes: 4000},
		BatchRecords: 50, BatchInterval: 20 * time.Millisecond,
	}
}

// running is a Publisher run in the background.
type running struct {
	p      *publish.Publisher
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg publish.Config) *running {
	t.Helper()
	p, err := publish.New(cfg)
	if err != nil {
		t.Fatalf("publish.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the run and returns Run's error.
func (r *running) stop(t *testing.T) error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of cancel")
		return nil
	}
}

// wait waits up to d for Run to return by itself and returns its error.
func (r *running) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(d):
		t.Fatalf("Run did not return within %s", d)
		return nil
	}
}

// waitThrough polls until the publisher's committed checkpoint covers
// position pos, or Run ends.
func (r *running) waitThrough(t *testing.T, pos uint64) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for r.p.Stats().Through.Commit < pos {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Run returned %v before publishing through %d (at %+v)", err, pos, r.p.Stats().Through)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("publisher did not reach position %d (at %+v)", pos, r.p.Stats().Through)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitPending polls until the publisher holds at least n handled and
// uncommitted records.
func (r *running) waitPending(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.p.Stats().Pending < n {
		if time.Now().After(deadline) {
			t.Fatalf("the publisher did not read %d events within 30s (pending %d)", n, r.p.Stats().Pending)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, with a deadline
	}
}

// startStore starts an in-process KurrentDB for one test and returns a
// client of it, the test's names, and a store appending to it. (A test that
// injects faults into the server starts it itself.)
func startStore(t *testing.T) (*store.Client, names, *lowStore) {
	t.Helper()
	url := kurrentdbtest.Start(t, kurrentdb.Options{}).URL()
	return kurrentdbtest.Store(t, url), newNames(t), &lowStore{t: t, db: kurrentdbtest.Client(t, url)}
}

// lowStore appends low-level events with the metadata capture writes
// (contract.AppendMetadata), through the official client.
type lowStore struct {
	t    *testing.T
	db   *esdb.Client
	last uint64
}

type lowEvent struct {
	stream, typ string
	data        map[string]any
}

// commitTime is the source commit time of LSN lsn in tests: deterministic.
func commitTime(lsn uint64) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(lsn) * time.Millisecond)
}

func lsnText(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)) }

// appendTx appends the events of source transaction lsn, each to its stream
// in its own append, and returns their ids.
func (s *lowStore) appendTx(lsn uint64, evs ...lowEvent) []string {
	s.t.Helper()
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = s.appendOne(lsn, i, e)
	}
	return ids
}

func (s *lowStore) appendOne(lsn uint64, ordinal int, e lowEvent) string {
	s.t.Helper()
	data, _ := json.Marshal(e.data)
	src := contract.Source{Slot: testSlot, Database: "shop", Schema: "public", Table: "t", Op: contract.OpInsert, CommitTime: commitTime(lsn),
		Pos: contract.Pos{CommitLSN: contract.LSN(lsn), Ordinal: uint64(ordinal)}}
	meta, err := contract.AppendMetadata(nil, &src, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	id := uuid.New()
	res, err := s.db.AppendToStream(context.Background(), e.stream, esdb.AppendToStreamOptions{}, esdb.EventData{
		EventID: id, EventType: e.typ, ContentType: esdb.ContentTypeJson, Data: data, Metadata: meta,
	})
	if err != nil {
		s.t.Fatalf("appending to %s: %v", e.stream, err)
	}
	s.last = res.CommitPosition
	return id.String()
}

// marker appends the capture progress marker for durableLsn.
func (s *lowStore) marker(durable uint64) {
	s.t.Helper()
	data := contract.EncodeProgress(contract.Progress{Slot: testSlot, DurableLSN: contract.LSN(durable)})
	res, err := s.db.AppendToStream(context.Background(), contract.ProgressStream(testSlot), esdb.AppendToStreamOptions{}, esdb.EventData{
		EventID: uuid.New(), EventType: contract.ProgressType, ContentType: esdb.ContentTypeJson, Data: data,
	})
	if err != nil {
		s.t.Fatalf("appending progress marker: %v", err)
	}
	s.last = res.CommitPosition
}

func customer(id, seq int, email string) lowEvent {
	return lowEvent{fmt.Sprintf("customer-%d", id), "CustomerChanged", map[string]any{"id": id, "email": email, "seq": seq}}
}

// readTopic returns every record a read_committed consumer sees in topic, up
// to the last stable offset of each partition at the time of the call.
func readTopic(t *testing.T, k *stack.Kafka, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(k.Client(t))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: partitions %v not read to their end", topic, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
