package publish

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// BenchmarkEnginePerEvent: promotion + record building per stored event,
// one per-event rule, no Kafka (the publisher's CPU cost per event).
func BenchmarkEnginePerEvent(b *testing.B) {
	p := filepath.Join(b.TempDir(), "r.yaml")
	_ = os.WriteFile(p, []byte(`
promote:
  - name: customer-changed
    from: [CustomerChanged]
    topic: crm.customers
    type: crm.customer.changed.v1
    value: {id: event.data.id, email: event.data.email}
`), 0o644)
	rs, err := mapping.Load([]string{p}, mapping.Options{})
	if err != nil {
		b.Fatal(err)
	}
	g := newEngine(rs, "dead", kafka.DefaultMaxRecordBytes)
	meta, _ := json.Marshal(map[string]any{"slot": "s", "commitLsn": "0/1", "ordinal": 0, "index": 0, "commitTime": "2026-01-01T00:00:00Z"})
	evs := make([]*store.Recorded, 1024)
	for i := range evs {
		d, _ := json.Marshal(map[string]any{"id": i, "email": fmt.Sprintf("c%d@example.com", i)})
		evs[i] = &store.Recorded{ID: uuid.New(), Type: "CustomerChanged", Stream: fmt.Sprintf("customer-%d", i),
			Data: d, Metadata: meta, Pos: contract.StorePos{Commit: uint64(i)}, Created: time.Now()}
	}
	var outs []output
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		outs, err = g.handle(evs[i%len(evs)], contract.StoreFrom{}, true, true, outs[:0])
		if err != nil || len(outs) != 1 {
			b.Fatalf("%d outputs, %v", len(outs), err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
