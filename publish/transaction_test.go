package publish_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

func order(id int) lowEvent {
	return lowEvent{fmt.Sprintf("order-%d", id), "OrderInserted", map[string]any{"orderId": id}}
}

func line(order int, sku string) lowEvent {
	return lowEvent{fmt.Sprintf("orderline-%d%s", order, sku), "OrderLineInserted", map[string]any{"orderId": order, "sku": sku}}
}

type placed struct {
	OrderID int
	Lines   []string
}

func readOrders(t *testing.T, k *stack.Kafka, topic string) map[int][]placed {
	t.Helper()
	out := map[int][]placed{}
	for _, r := range readTopic(t, k, topic) {
		var p placed
		if err := json.Unmarshal(r.Value, &p); err != nil {
			t.Fatalf("order record %s: %v", r.Value, err)
		}
		if string(r.Key) != fmt.Sprint(p.OrderID) || header(r, kafka.HeaderType) != "shop.order.placed.v1" {
			t.Errorf("order record key %s type %s; want key %d, shop.order.placed.v1", r.Key, header(r, kafka.HeaderType), p.OrderID)
		}
		if want := fmt.Sprintf("tx/%s/%s/order-placed", testSlot, lsnText(uint64(1000+p.OrderID))); header(r, kafka.HeaderID) != want {
			t.Errorf("order %d ce_id %s; want %s", p.OrderID, header(r, kafka.HeaderID), want)
		}
		sort.Strings(p.Lines)
		out[p.OrderID] = append(out[p.OrderID], p)
	}
	return out
}

// TestTransactionScopedPromotion: two source transactions (an order and 3
// lines each, in 4 streams) interleaved with each other and with per-event
// traffic in $all become exactly one OrderPlaced each, once the progress
// marker says they are complete, also when the publisher is restarted
// between their events (it re-reads from the resume position and skips
// per-event records it already committed).
func TestTransactionScopedPromotion(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run(fmt.Sprintf("restart=%v", restart), func(t *testing.T) {
			k := stack.StartKFake(t)
			db, n, s := startStore(t)
			rs := loadRules(t, n)
			exp := newExpectation()
			clsn := uint64(0)
			r := start(t, config(db, rs, k, n, kafka.ExactlyOnce))

			// Orders 1 and 2 commit at LSNs 1001 and 1002; their events are
			// appended interleaved, as concurrent stream appends may be.
			s.appendOne(1001, 0, order(1))
			exp.customers(s, &clsn, 5)
			s.appendOne(1002, 0, order(2))
			s.appendOne(1001, 1, line(1, "a"))
			exp.customers(s, &clsn, 5)
			s.appendOne(1002, 1, line(2, "x"))
			if restart {
				// Committed through here with both transactions open.
				r.waitThrough(t, s.last)
				if err := r.stop(t); err != nil {
					t.Fatal(err)
				}
			}
			s.appendOne(1001, 2, line(1, "b"))
			s.appendOne(1002, 2, line(2, "y"))
			s.appendOne(1001, 3, line(1, "c"))
			s.marker(1001) // completes order 1 only
			if restart {
				r = start(t, config(db, rs, k, n, kafka.ExactlyOnce))
				r.waitThrough(t, s.last)
				if err := r.stop(t); err != nil {
					t.Fatal(err)
				}
				r = start(t, config(db, rs, k, n, kafka.ExactlyOnce))
			}
			exp.customers(s, &clsn, 5)
			s.appendOne(1002, 3, line(2, "z"))
			s.marker(1002)
			r.waitThrough(t, s.last)

			got := readOrders(t, k, n.orders)
			want := map[int][]placed{1: {{1, []string{"a", "b", "c"}}}, 2: {{2, []string{"x", "y", "z"}}}}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("orders topic: %v; want exactly one OrderPlaced per order: %v", got, want)
			}
			exp.check(t, readTopic(t, k, n.customers))
		})
	}
}

// TestReplayEqualsLive: Replay of one promotion into a new topic yields,
// partition by partition and in order, exactly the records the live
// publisher produced for that rule and range (key, value, every header),
// for the whole history and from a position in the middle (where a
// transaction begins before the position and completes after it).
func TestReplayEqualsLive(t *testing.T) {
	k := stack.StartKFake(t)
	db, n, s := startStore(t)
	rs := loadRules(t, n)
	exp := newExpectation()
	clsn := uint64(0)
	exp.customers(s, &clsn, 30)
	s.appendOne(1001, 0, order(1))
	exp.customers(s, &clsn, 30)
	middle := s.last
	before := map[string]bool{}
	for id := range exp.ids {
		before[id] = true
	}
	s.appendOne(1001, 1, line(1, "a"))
	s.marker(1001)
	exp.customers(s, &clsn, 30)
	r := start(t, config(db, rs, k, n, kafka.ExactlyOnce))
	r.waitThrough(t, s.last)
	// After its first commit the publisher records it in the store (an
	// event it commits past too): the end of $all it must reach.
	end := lastAll(t, s.db)
	r.waitThrough(t, end)

	for _, tc := range []struct {
		rule, topic string
		from        publish.ReplayFrom
		skip        map[string]bool // live ce_ids outside the range
		want        int
	}{
		{"customer-changed", n.customers, publish.ReplayFrom{Start: true}, nil, 90},
		{"customer-changed", n.customers, publish.ReplayFrom{Position: middle}, before, 30},
		{"order-placed", n.orders, publish.ReplayFrom{Position: middle}, nil, 1},
	} {
		into := "replay-" + uniq(t)
		var progress []publish.ReplayStats
		st, err := publish.Replay(t.Context(), publish.ReplayConfig{
			Store: db, Rules: rs, Promotion: tc.rule, From: tc.from, Topic: into,
			Kafka:    kafka.ClusterConfig{Brokers: k.Brokers, CreateTopics: true, Partitions: 3, ReplicationFactor: 1},
			Progress: func(s publish.ReplayStats) { progress = append(progress, s) }, ProgressEvery: 10,
		})
		if err != nil {
			t.Fatalf("Replay %s: %v", tc.rule, err)
		}
		if st.Records != tc.want || len(progress) < 2 || progress[len(progress)-1] != st {
			t.Errorf("replay %s from %+v: stats %+v, %d progress reports; want %d records and a final report", tc.rule, tc.from, st, len(progress), tc.want)
		}
		live := map[int32][]string{}
		for _, rec := range readTopic(t, k, tc.topic) {
			if header(rec, kafka.HeaderSource) == "chronicler/"+testSlot+"/"+tc.rule && !tc.skip[header(rec, kafka.HeaderID)] {
				live[rec.Partition] = append(live[rec.Partition], recordText(rec))
			}
		}
		replayed := map[int32][]string{}
		for _, rec := range readTopic(t, k, into) {
			replayed[rec.Partition] = append(replayed[rec.Partition], recordText(rec))
		}
		if len(live) == 0 || fmt.Sprint(live) != fmt.Sprint(replayed) {
			t.Errorf("replay of %s from %+v differs from live:\nlive   %v\nreplay %v", tc.rule, tc.from, live, replayed)
		}
	}
	if st := r.p.Stats(); st.Through.Commit != end {
		t.Errorf("live checkpoint moved to %+v during replays; want %d", st.Through, end)
	}
}

// recordText is a record without its topic, partition and offset.
func recordText(r *kgo.Record) string {
	return fmt.Sprintf("%s|%s|%v", r.Key, r.Value, r.Headers)
}
