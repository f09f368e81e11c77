package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

const chaosRules = `
promote:
  - name: customer-changed
    from: [CustomerChanged]
    topic: {{customers}}
    type: crm.customer.changed.v1
    value: {id: event.data.id, seq: event.data.seq}
  - name: order-placed
    scope: transaction
    from: OrderInserted
    topic: {{orders}}
    key: event.data.orderId
    type: shop.order.placed.v1
    value: {orderId: event.data.orderId, lines: 'map(filter(events, .type == "OrderLineInserted"), .data.sku)'}
`

// expected is one integration event the consumer must see exactly once.
type expected struct {
	key, source, typ, subject, time string
	seq                             int    // customers: position in the key's order
	lines                           string // orders: sorted skus
}

// chaosStore appends low-level events as capture does: one slot per
// appender goroutine, each event with capture's metadata
// (contract.AppendMetadata), and a progress marker after the transactions
// it covers.
type chaosStore struct {
	t    *testing.T
	db   *esdb.Client
	mu   sync.Mutex
	want map[string]expected // by ce_id
}

func lsnText(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)) }

func commitTime(lsn uint64) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(lsn) * time.Microsecond)
}

func (s *chaosStore) append(ctx context.Context, slot string, lsn uint64, ordinal int, stream, typ string, data any) (string, error) {
	d, _ := json.Marshal(data)
	src := contract.Source{Slot: slot, CommitTime: commitTime(lsn), Pos: contract.Pos{CommitLSN: contract.LSN(lsn), Ordinal: uint64(ordinal)}}
	m, err := contract.AppendMetadata(nil, &src, nil)
	if err != nil {
		return "", err
	}
	id := uuid.New()
	_, err = s.db.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, esdb.EventData{EventID: id, EventType: typ, ContentType: esdb.ContentTypeJson, Data: d, Metadata: m})
	if err != nil {
		return "", fmt.Errorf("appending to %s: %w", stream, err)
	}
	return id.String(), nil
}

func (s *chaosStore) marker(ctx context.Context, slot string, durable uint64) error {
	d := contract.EncodeProgress(contract.Progress{Slot: slot, DurableLSN: contract.LSN(durable)})
	_, err := s.db.AppendToStream(ctx, contract.ProgressStream(slot), esdb.AppendToStreamOptions{}, esdb.EventData{EventID: uuid.New(), EventType: contract.ProgressType, ContentType: esdb.ContentTypeJson, Data: d})
	return err
}

func (s *chaosStore) expect(id string, e expected) {
	s.mu.Lock()
	s.want[id] = e
	s.mu.Unlock()
}

// customers appends n CustomerChanged events for customers [first, first+count)
// round robin, one transaction each, on its own slot.
func (s *chaosStore) customers(ctx context.Context, slot string, first, count, n int) error {
	seqs := make([]int, count)
	for i := 0; i < n; i++ {
		lsn := uint64(i + 1)
		c := first + i%count
		seq := seqs[i%count]
		seqs[i%count]++
		stream := fmt.Sprintf("customer-%d", c)
		id, err := s.append(ctx, slot, lsn, 0, stream, "CustomerChanged", map[string]any{"id": c, "seq": seq})
		if err != nil {
			return err
		}
		s.expect(id+"/customer-changed", expected{key: fmt.Sprint(c), source: "chronicler/" + slot + "/customer-changed", typ: "crm.customer.changed.v1",
			subject: stream, time: commitTime(lsn).Format(time.RFC3339Nano), seq: seq})
		if i%50 == 49 || i == n-1 {
			if err := s.marker(ctx, slot, lsn); err != nil {
				return err
			}
		}
	}
	return nil
}

// orders appends n orders with 3 lines each (4 streams per source
// transaction), two transactions interleaved at a time, with a marker
// after each pair.
func (s *chaosStore) orders(ctx context.Context, slot string, n int) error {
	for i := 0; i < n; i += 2 {
		pair := []int{i, i + 1}
		for ord := 0; ord < 4; ord++ {
			for _, o := range pair {
				lsn := uint64(o + 1)
				var err error
				if ord == 0 {
					_, err = s.append(ctx, slot, lsn, 0, fmt.Sprintf("order-%d", o), "OrderInserted", map[string]any{"orderId": o})
				} else {
					sku := fmt.Sprintf("sku%d", ord)
					_, err = s.append(ctx, slot, lsn, ord, fmt.Sprintf("orderline-%d%s", o, sku), "OrderLineInserted", map[string]any{"orderId": o, "sku": sku})
				}
				if err != nil {
					return err
				}
			}
		}
		for _, o := range pair {
			lsn := uint64(o + 1)
			s.expect(fmt.Sprintf("tx/%s/%s/order-placed", slot, lsnText(lsn)), expected{key: fmt.Sprint(o), source: "chronicler/" + slot + "/order-placed",
				typ: "shop.order.placed.v1", subject: fmt.Sprintf("order-%d", o), time: commitTime(lsn).Format(time.RFC3339Nano), lines: "sku1,sku2,sku3"})
		}
		if err := s.marker(ctx, slot, uint64(i+2)); err != nil {
			return err
		}
	}
	return nil
}

// publishConfig writes the configuration of a publish-only `chronicler run`
// (production's wiring: the binary the harness built) and returns its path.
func publishConfig(t *testing.T, storeURL string, brokers []string, rules, n, mode string) string {
	t.Helper()
	mode = strings.ReplaceAll(mode, "-", "_")
	cfg := fmt.Sprintf(`store:
  url: %q
kafka:
  brokers: [%s]
  create_topics: true
  partitions: 3
  replication_factor: 1
rules:
  paths: [%q]
  reload: false
delivery:
  mode: %s
  publisher_id: %q
  checkpoint_topic: %q
deadletter:
  topic: %q
ha:
  enabled: false
http:
  addr: ""
shutdown:
  grace: 5s
`, storeURL, strings.Join(brokers, ", "), rules, mode, "pub-"+n, "cp-"+n, "dead-"+n)
	p := filepath.Join(t.TempDir(), "publish.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestChaosStoreToKafka: 20,000 stored events (16,000 per-event customer
// changes on 4 slots, 1,000 orders of 4 events each in 4 streams) are
// promoted while the publisher process (`chronicler run --only publish`,
// production's wiring) is SIGKILLed at random at least 10 times, often
// inside an open Kafka transaction; a read_committed consumer then sees every expected integration
// event exactly once, in store order per key, with exact CloudEvents
// headers. The broker-restart run also stops and starts the (dedicated)
// broker mid-run.
func TestChaosStoreToKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: not in -short")
	}
	bin := bins.chronicler
	t.Run("kills", func(t *testing.T) { publishChaos(t, bin, stack.StartKafka(t), nil, "exactly-once", 1) })
	t.Run("broker-restart", func(t *testing.T) {
		b := stack.StartKafkaBroker(t)
		publishChaos(t, bin, &stack.Kafka{Brokers: []string{b.Addr}, Kind: "real", Broker: b}, b, "exactly-once", 1)
	})
	// At least once: nothing missing after the kills; duplicates (a batch
	// re-published after a kill) carry equal ce_id and equal content. A
	// quarter of the events (5,000) keeps the suite's time down.
	t.Run("at-least-once", func(t *testing.T) { publishChaos(t, bin, stack.StartKafka(t), nil, "at-least-once", 4) })
}

func publishChaos(t *testing.T, bin string, k *stack.Kafka, broker *stack.Broker, mode string, div int) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// A 2ms append latency (an fsync) spreads the 20,000 appends over the
	// kill window, so the publisher is killed while events keep arriving.
	srv := kurrentdbtest.Start(t, kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatency: 2 * time.Millisecond}})
	db := kurrentdbtest.Client(t, srv.URL())
	n := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	customers, orders := "customers-"+n, "orders-"+n
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(strings.NewReplacer("{{customers}}", customers, "{{orders}}", orders).Replace(chaosRules)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &chaosStore{t: t, db: db, want: map[string]expected{}}

	// Appenders: 4 customer slots of 4,000 events (50 customers each) and
	// one order slot of 1,000 orders = 20,000 events, concurrently (divided
	// by div).
	appendErr := make(chan error, 5)
	var appenders sync.WaitGroup
	for i := 0; i < 4; i++ {
		appenders.Add(1)
		go func() {
			defer appenders.Done()
			appendErr <- s.customers(ctx, fmt.Sprintf("c%d", i), i*50, 50, 4000/div)
		}()
	}
	appenders.Add(1)
	go func() { defer appenders.Done(); appendErr <- s.orders(ctx, "orders", 1000/div) }()
	appended := make(chan struct{})
	appendStart := time.Now()
	go func() {
		appenders.Wait()
		t.Logf("%d events appended in %s", 20000/div, time.Since(appendStart))
		close(appended)
	}()

	logPath := filepath.Join(t.TempDir(), "publisher.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cfg := publishConfig(t, srv.URL(), k.Brokers, rules, n, mode)
	startChild := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--only", "publish", "--config", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting the publisher: %v", err)
		}
		return cmd
	}
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("publisher log (last 40 lines):\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills, restarted := 0, broker == nil
	began := time.Now()
	child := startChild()
	for kills < 10 || !restarted {
		// Chaos timing, not a wait for a server: a random lifetime.
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		_ = child.Process.Signal(syscall.SIGKILL)
		_ = child.Wait()
		kills++
		child = startChild()
		if !restarted && kills == 5 {
			// The broker goes down under a running publisher: it must hold
			// back (nothing lost) and resume when the broker is back.
			time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
			t.Logf("restarting the broker after %s", time.Since(began))
			broker.Stop()
			if err := broker.Start(); err != nil {
				t.Fatalf("restarting the broker: %v", err)
			}
			restarted = true
		}
	}
	t.Logf("%d SIGKILLs in %s", kills, time.Since(began))
	select {
	case <-appended:
	case <-ctx.Done():
		t.Fatal("appending 20,000 events did not finish")
	}
	close(appendErr)
	for err := range appendErr {
		if err != nil {
			t.Fatal(err)
		}
	}
	defer func() { _ = child.Process.Signal(syscall.SIGKILL); _ = child.Wait() }()
	if len(s.want) != 17000/div {
		t.Fatalf("expected %d integration events; want %d", len(s.want), 17000/div)
	}

	// Consume with read_committed until every expected event has arrived,
	// then for 3 s more: anything extra that arrives is a duplicate.
	seen := map[string]int{}
	perKey := map[string][]int{}
	cl := k.Client(t, kgo.ConsumeTopics(customers, orders), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	bad := 0
	content := map[string]string{}
	check := func(r *kgo.Record) {
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		id := h[kafka.HeaderID]
		seen[id]++
		text := fmt.Sprintf("%s|%s|%v", r.Key, r.Value, r.Headers)
		if c, dup := content[id]; dup && c != text {
			t.Errorf("duplicate ce_id %s with different content:\n%s\n%s", id, c, text)
		}
		content[id] = text
		if seen[id] > 1 {
			return // order is checked on first occurrences
		}
		e, ok := s.want[id]
		if !ok {
			t.Errorf("unexpected record ce_id %q", id)
			return
		}
		var v struct {
			Seq   int
			Lines []string
		}
		_ = json.Unmarshal(r.Value, &v)
		sort.Strings(v.Lines)
		if string(r.Key) != e.key || h[kafka.HeaderSource] != e.source || h[kafka.HeaderType] != e.typ || h[kafka.HeaderSubject] != e.subject ||
			h[kafka.HeaderTime] != e.time || h[kafka.HeaderSpecVersion] != "1.0" || h[kafka.HeaderContentType] != "application/json" ||
			(e.lines != "" && strings.Join(v.Lines, ",") != e.lines) {
			if bad++; bad < 10 {
				t.Errorf("record %s key %s headers %v; want %+v", r.Value, r.Key, h, e)
			}
		}
		if e.lines == "" {
			perKey[e.key] = append(perKey[e.key], v.Seq)
		}
	}
	for len(seen) < len(s.want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumer saw %d of %d integration events before the deadline", len(seen), len(s.want))
		}
		fs.EachRecord(check)
	}
	drain, stop := context.WithTimeout(ctx, 3*time.Second)
	for drain.Err() == nil {
		cl.PollFetches(drain).EachRecord(check)
	}
	stop()
	dups := 0
	for id, c := range seen {
		if c != 1 {
			if dups++; dups < 10 && mode == "exactly-once" {
				t.Errorf("ce_id %s seen %d times", id, c)
			}
		}
	}
	for key, seqs := range perKey {
		for i, q := range seqs {
			if q != i {
				t.Fatalf("key %s: seqs %v; want 0,1,2,... (store order)", key, seqs)
			}
		}
	}
	t.Logf("consumer saw %d integration events, %d duplicates, %d bad", len(seen), dups, bad)
}
