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

// TestPublisherRecordIsNeverPromoted: the publisher's record
// (contract.Published, published.go) is an event of $all that a rule
// matching every type would see; it is never promoted, and the checkpoint
// moves past it like past any event.
func TestPublisherRecordIsNeverPromoted(t *testing.T) {
	const rules = `
promote:
  - name: everything
    topic: all
    type: any.v1
    value: {type: event.type}
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
	rec := &store.Recorded{ID: uuid.New(), Stream: contract.PublisherStream("p"), Type: contract.PublishedType,
		Data: contract.EncodePublished(contract.Published{Publisher: "p", CheckpointTopic: "cp"}), Pos: contract.StorePos{Commit: 11, Prepare: 11}, Created: time.Unix(1, 0)}
	other := &store.Recorded{ID: uuid.New(), Stream: "customer-1", Type: "CustomerChanged", Data: []byte(`{}`),
		Pos: contract.StorePos{Commit: 10, Prepare: 10}, Created: time.Unix(1, 0)}
	for _, ev := range []*store.Recorded{other, rec} {
		if err := l.handle(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(w.commits) != 1 || len(w.commits[0]) != 1 || string(w.commits[0][0].Value) != `{"type":"CustomerChanged"}` {
		t.Fatalf("commits %v; want the other event's record alone", w.commits)
	}
	if cp := w.cps[0]; cp.StorePos != rec.Pos {
		t.Fatalf("checkpoint %+v; want it through the record, %+v", cp, rec.Pos)
	}
}
