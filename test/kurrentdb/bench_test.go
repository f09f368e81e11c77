package kurrentdb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/google/uuid"
)

// Benchmarks go through the official client over loopback gRPC, so they
// measure what a test or `chronicler dev` sees. Each reports events/s; run
//
//	go test -run '^$' -bench . -benchtime 2s ./test/kurrentdb/
//
// "durable" variants fsync per append batch into a temp directory (numbers
// depend on the disk; group commit shows in the concurrent one).

func benchEvents(n int) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = esdb.EventData{EventID: uuid.New(), EventType: "Bench", ContentType: esdb.ContentTypeJson,
			Data: []byte(`{"customerId":42,"email":"someone@example.com","at":"2026-01-01T00:00:00Z"}`)}
	}
	return out
}

func modes(b *testing.B) map[string]kurrentdb.Options {
	return map[string]kurrentdb.Options{"memory": {}, "durable": {DataDir: b.TempDir()}}
}

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{"memory", "durable"} {
		for _, size := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/single-stream/batch-%d", mode, size), func(b *testing.B) {
				srv := kurrentdbtest.Start(b, modes(b)[mode])
				db := kurrentdbtest.Client(b, srv.URL())
				events := benchEvents(size)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for k := range events {
						events[k].EventID = uuid.New()
					}
					if _, err := db.AppendToStream(context.Background(), "bench-single", esdb.AppendToStreamOptions{}, events...); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
			})
			b.Run(fmt.Sprintf("%s/many-streams/batch-%d", mode, size), func(b *testing.B) {
				srv := kurrentdbtest.Start(b, modes(b)[mode])
				db := kurrentdbtest.Client(b, srv.URL())
				events := benchEvents(size)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for k := range events {
						events[k].EventID = uuid.New()
					}
					if _, err := db.AppendToStream(context.Background(), fmt.Sprintf("bench-%d", i%1000), esdb.AppendToStreamOptions{}, events...); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
			})
		}
		b.Run(mode+"/concurrent-16/batch-1", func(b *testing.B) {
			srv := kurrentdbtest.Start(b, modes(b)[mode])
			db := kurrentdbtest.Client(b, srv.URL())
			var n atomic.Int64
			b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 concurrent appenders
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				stream := fmt.Sprintf("bench-par-%d", n.Add(1))
				for pb.Next() {
					if _, err := db.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{}, benchEvents(1)...); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func BenchmarkRead(b *testing.B) {
	const n = 1000
	srv := kurrentdbtest.Start(b, kurrentdb.Options{})
	db := kurrentdbtest.Client(b, srv.URL())
	for i := 0; i < n/100; i++ {
		if _, err := db.AppendToStream(context.Background(), "bench-read", esdb.AppendToStreamOptions{}, benchEvents(100)...); err != nil {
			b.Fatal(err)
		}
	}
	drain := func(b *testing.B, rs *esdb.ReadStream, err error) {
		if err != nil {
			b.Fatal(err)
		}
		defer rs.Close()
		got := 0
		for {
			_, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("read %d events, want %d", got, n)
		}
	}
	b.Run("stream-forwards-1000", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rs, err := db.ReadStream(context.Background(), "bench-read", esdb.ReadStreamOptions{}, n)
			drain(b, rs, err)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("all-forwards-1000", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rs, err := db.ReadAll(context.Background(), esdb.ReadAllOptions{}, n)
			drain(b, rs, err)
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
	})
}
