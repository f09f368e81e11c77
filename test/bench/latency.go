package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// runLatency is the steady-rate run: pgbench at a fixed rate (--rate)
// through the full pipeline to Kafka, live. Each integration event's
// latency is the instant a read_committed consumer receives it minus its
// source commit time (ce_time), on the same machine's clock.
func (b *bench) runLatency(ctx context.Context, pgbenchReady bool) (Result, error) {
	o := b.o
	r := Result{Scenario: "latency", Workload: "pgbench-rate"}
	if !pgbenchReady {
		if err := pgbenchInit(ctx, b.pg, o.scale); err != nil {
			return r, err
		}
	}
	w := &workload{name: "latency", publication: "bench_latency", topic: pgbenchTopic,
		rules: b.rules + "/pgbench", tables: pgbenchTables}
	conn, err := pgx.Connect(ctx, b.pg.URL())
	if err != nil {
		return r, err
	}
	defer conn.Close(context.Background())
	slot := w.slot("full")
	if err := w.createSlots(ctx, conn, []string{"full"}); err != nil {
		return r, err
	}
	defer w.dropSlots(context.Background(), b.pg.URL())

	srv, err := b.startServer(ctx, 0, w, "full")
	if err != nil {
		return r, err
	}
	defer srv.stop()
	from, err := prepareTopic(ctx, b.brokers, w.topic)
	if err != nil {
		return r, err
	}
	cons, err := startConsumer(b.brokers, w.topic, from, true)
	if err != nil {
		return r, err
	}
	defer cons.close()
	cfg := b.workerConfig("full", w, "full")
	cfg.StoreURL = srv.listenAddr()
	procs := watchOthers(ctx, b.pg.URL(), srv, slot, &b.kafka)
	defer procs.stop()
	c, err := startChild(cfg)
	if err != nil {
		return r, err
	}
	defer c.stop()

	// Warm up, so the run measures the live pipeline, not its start: one
	// transaction all the way to Kafka, then (-latency-warmup) the same
	// rate for a while. A broker the bench has just started compiles its
	// hot paths in those first seconds (its p99 was 200-350 ms per second
	// for about 10 s, then under 100); a production broker is long warm.
	// The warm-up's own latencies are reported apart (WarmupP99Ms).
	if _, err := runPgbench(ctx, b.pg, "-t", "1", "-c", "1"); err != nil {
		return r, err
	}
	warm := int64(1)
	if _, err := cons.waitCount(ctx, warm, 2*time.Minute, c.exited, c.stderrTail); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	if secs := int(o.latencyWarmup / time.Second); secs > 0 {
		txs, err := runPgbench(ctx, b.pg, "-R", strconv.Itoa(o.rate), "-T", strconv.Itoa(secs),
			"-c", strconv.Itoa(o.clients), "-j", strconv.Itoa(o.clients))
		if err != nil {
			return r, err
		}
		warm += txs
		if _, err := cons.waitCount(ctx, warm, limit, c.exited, c.stderrTail); err != nil {
			return r, fmt.Errorf("warm-up at %d tx/s: %w", o.rate, err)
		}
		w := slices.Clone(cons.latencySlice(1, warm))
		slices.Sort(w)
		r.WarmupP50Ms, r.WarmupP99Ms = ms(quantile(w, 0.50)), ms(quantile(w, 0.99))
	}
	cpu0, _, err := c.usage()
	if err != nil {
		return r, err
	}
	procs.mark()
	// The slot's lag (WAL written minus what capture confirmed), sampled
	// while pgbench runs: it tells a slow capture from a slow publisher.
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	lagDone := make(chan []int64, 1)
	go func() {
		var lags []int64
		defer func() { lagDone <- lags }()
		lc, err := pgx.Connect(lagCtx, b.pg.URL())
		if err != nil {
			return
		}
		defer lc.Close(context.Background())
		for {
			var lag int64
			if lc.QueryRow(lagCtx, "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lag) == nil {
				lags = append(lags, lag)
			}
			select {
			case <-lagCtx.Done():
				return
			case <-time.After(250 * time.Millisecond): // sampling period
			}
		}
	}()
	start := time.Now()
	txs, err := runPgbench(ctx, b.pg, "-R", strconv.Itoa(o.rate), "-T", strconv.Itoa(int(o.latencyDuration/time.Second)),
		"-c", strconv.Itoa(o.clients), "-j", strconv.Itoa(o.clients))
	if err != nil {
		return r, err
	}
	stopLag()
	lags := <-lagDone
	doneAt, err := cons.waitCount(ctx, warm+txs, limit, c.exited, c.stderrTail)
	if err != nil {
		return r, fmt.Errorf("topic %s: %w", w.topic, err)
	}
	if len(lags) > 0 {
		sl := slices.Clone(lags)
		slices.Sort(sl)
		r.SlotLagP50Bytes, r.SlotLagMaxBytes = sl[len(sl)/2], sl[len(sl)-1]
	}
	cpu1, rss, err := c.usage()
	if err != nil {
		return r, err
	}
	r.Transactions, r.Changes, r.Events, r.Records = txs, 4*txs, 4*txs, txs // as the pgbench workload
	r.CPUSecPerMChanges = (cpu1 - cpu0) / float64(r.Changes) * 1e6
	procs.end(&r)
	r.series = c.progressSeries()
	if err := c.stop(); err != nil {
		return r, err
	}
	cons.close()
	if n := cons.total(); n != warm+txs {
		return r, fmt.Errorf("topic %s: %d integration events read; want exactly %d", w.topic, n, warm+txs)
	}
	if cons.badTime > 0 || int64(len(cons.latencies)) != warm+txs {
		return r, fmt.Errorf("topic %s: %d records without a readable ce_time header", w.topic, warm+txs-int64(len(cons.latencies)))
	}
	lat, arr := cons.latencies[warm:], cons.arrivals[warm:] // without the warm-up
	r.Seconds = doneAt.Sub(start).Seconds()
	r.ChangesPerSec = float64(r.Changes) / r.Seconds
	r.EventsPerSec = float64(r.Events) / r.Seconds
	r.RecordsPerSec = float64(r.Records) / r.Seconds
	r.PeakRSSMiB = rss
	r.RateTxPerSec = o.rate
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	r.LatencyP50Ms = ms(quantile(sorted, 0.50))
	r.LatencyP99Ms = ms(quantile(sorted, 0.99))
	r.LatencyMaxMs = ms(sorted[len(sorted)-1])
	produced := slices.Clone(cons.produced[warm:])
	slices.Sort(produced)
	r.ProducedP50Ms, r.ProducedP99Ms = ms(quantile(produced, 0.50)), ms(quantile(produced, 0.99))
	r.latencies, r.arrivals, r.start = lat, arr, start
	r.WorkloadDesc = fmt.Sprintf("pgbench TPC-B-like at %d tx/s (--rate), scale %d, %d clients, %s after a %s warm-up at that rate: %d transactions", o.rate, o.scale, o.clients, o.latencyDuration, o.latencyWarmup, txs)
	return r, nil
}

// quantile is the nearest-rank quantile of sorted (not empty).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
