package capture_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

// BenchmarkPipeline feeds transactions of two item inserts (three events:
// two ItemAdded, one Audited; 1,000 entities) through the pipeline into the
// in-process store, with and without 2 ms injected append latency, and
// reports transactions per second until every one is durable. Concurrent
// appends to different streams are what should hide the latency.
func BenchmarkPipeline(b *testing.B) {
	for _, lat := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run("latency="+lat.String(), func(b *testing.B) {
			srv := kurrentdbtest.Start(b, kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatency: lat}})
			db := kurrentdbtest.Store(b, srv.URL())
			rules, err := mapping.LoadBytes("rules.yaml", []byte(testRules), mapping.Options{})
			if err != nil {
				b.Fatal(err)
			}
			var pipe *capture.Pipeline
			var acked atomic.Uint64
			app, err := store.New(db, store.Config{Slot: "bench", Logger: slog.New(slog.DiscardHandler), OnDurable: func(l contract.LSN) { pipe.Durable(l) }})
			if err != nil {
				b.Fatal(err)
			}
			pipe, err = capture.NewPipeline(capture.Config{Slot: "bench", Rules: rules, Logger: slog.New(slog.DiscardHandler),
				Ack: func(l contract.LSN) { acked.Store(uint64(l)) }}, app, db, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go app.Run(ctx)
			go pipe.Run(ctx)
			b.ResetTimer()
			start := time.Now()
			var last contract.LSN
			for i := 0; i < b.N; i++ {
				lsn := contract.LSN(0x1000 + i*0x100)
				tx := contract.Tx{XID: uint32(i), CommitLSN: lsn}
				if err := pipe.Begin(ctx, tx); err != nil {
					b.Fatal(err)
				}
				for o := 0; o < 2; o++ {
					id := int64((i*2 + o) % 1000)
					if err := pipe.Change(ctx, &contract.Change{Op: contract.OpInsert, Schema: "public", Table: "items", Key: []string{"id"},
						New: map[string]any{"id": id, "note": "ok"}, Tx: tx, Ordinal: uint64(o)}); err != nil {
						b.Fatal(err)
					}
				}
				if err := pipe.Commit(ctx, tx); err != nil {
					b.Fatal(err)
				}
				last = lsn
			}
			deadline := time.Now().Add(60 * time.Second)
			for contract.LSN(acked.Load()) < last {
				if time.Now().After(deadline) {
					b.Fatalf("not durable after 60s: %s of %s", contract.LSN(acked.Load()), last)
				}
				time.Sleep(time.Millisecond) // polling interval, with a deadline
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
		})
	}
}
