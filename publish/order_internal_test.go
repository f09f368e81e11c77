package publish

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// TestTransactionEventsInSourceOrder: a transaction-scoped rule sees
// `events` in the source transaction's order (ordinal, then the capture
// rule's index), although $all holds them in another order (capture appends
// a transaction's streams concurrently), and `event` is the first match in
// that order.
func TestTransactionEventsInSourceOrder(t *testing.T) {
	const rules = `
promote:
  - name: transfer
    scope: transaction
    from: [Debit, Credit, Ledger]
    topic: transfers
    key: '"k"'
    type: bank.transfer.v1
    value: {types: 'map(events, .type)', first: event.type}
`
	rs, err := mapping.LoadBytes("rules.yaml", []byte(rules), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Store: &store.Client{}, Rules: rs, PublisherID: "p", Kafka: kafka.ClusterConfig{Brokers: []string{"b:9092"}},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeSink{}
	l := newLoop(p, w, kafka.Checkpoint{}, false, nil)
	at := func(typ string, ordinal uint64, index uint32, pos uint64) *store.Recorded {
		src := contract.Source{Slot: "s", Pos: contract.Pos{CommitLSN: 0x100, Ordinal: ordinal, Index: index}, CommitTime: time.Unix(1, 0)}
		meta, err := contract.AppendMetadata(nil, &src, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &store.Recorded{ID: uuid.New(), Stream: typ + "-1", Type: typ, Data: []byte(`{}`), Metadata: meta,
			Pos: contract.StorePos{Commit: pos, Prepare: pos}, Created: time.Unix(2, 0)}
	}
	// Source order: Debit (ordinal 0), Credit (1, index 0), Ledger (1,
	// index 1); $all order: Ledger, Credit, Debit.
	for _, ev := range []*store.Recorded{at("Ledger", 1, 1, 10), at("Credit", 1, 0, 11), at("Debit", 0, 0, 12), marker(0x100, 13)} {
		if err := l.handle(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.commits) != 1 || len(w.commits[0]) != 1 {
		t.Fatalf("commits %v; want one record", w.commits)
	}
	want := `{"types":["Debit","Credit","Ledger"],"first":"Debit"}`
	if got := string(w.commits[0][0].Value); got != want {
		t.Fatalf("transaction record %s; want %s (source order, not $all order)", got, want)
	}
}
