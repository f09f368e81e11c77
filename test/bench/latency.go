package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
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
	rig, err := b.startLatencyRig(ctx)
	defer rig.close()
	if err != nil {
		return r, err
	}
	w, slot, c, cons, procs := rig.w, rig.slot, rig.c, rig.cons, rig.procs
	warm, err := b.warmUp(ctx, c, cons, &r)
	if err != nil {
		return r, err
	}
	cpu0, _, err := c.usage()
	if err != nil {
		return r, err
	}
	procs.mark()
	stopLag := sampleSlotLag(ctx, b.pg.URL(), slot)
	defer stopLag()
	start := time.Now()
	txs, err := runPgbench(ctx, b.pg, "-R", strconv.Itoa(o.rate), "-T", strconv.Itoa(int(o.latencyDuration/time.Second)),
		"-c", strconv.Itoa(o.clients), "-j", strconv.Itoa(o.clients))
	if err != nil {
		return r, err
	}
	lags := stopLag()
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
	r.Seconds = doneAt.Sub(start).Seconds()
	r.ChangesPerSec = float64(r.Changes) / r.Seconds
	r.EventsPerSec = float64(r.Events) / r.Seconds
	r.RecordsPerSec = float64(r.Records) / r.Seconds
	r.PeakRSSMiB = rss
	r.RateTxPerSec = o.rate
	r.latencyFigures(cons, warm, start)
	r.WorkloadDesc = fmt.Sprintf("pgbench TPC-B-like at %d tx/s (--rate), scale %d, %d clients, %s after a %s warm-up at that rate: %d transactions", o.rate, o.scale, o.clients, o.latencyDuration, o.latencyWarmup, txs)
	return r, nil
}

// quantile is the nearest-rank quantile of sorted (not empty).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// warmUp runs one transaction all the way to Kafka, then (-latency-warmup)
// pgbench at the run's rate, so the run measures the live pipeline, not
// its start: a broker the bench has just started compiles its hot paths in
// those first seconds (its p99 was 200-350 ms per second for about 10 s,
// then under 100), where a production broker is long warm. The warm-up's
// own latencies go to r apart (WarmupP50Ms, WarmupP99Ms). It returns the
// integration events the warm-up produced.
func (b *bench) warmUp(ctx context.Context, c *child, cons *consumer, r *Result) (int64, error) {
	o := b.o
	if _, err := runPgbench(ctx, b.pg, "-t", "1", "-c", "1"); err != nil {
		return 0, err
	}
	warm := int64(1)
	if _, err := cons.waitCount(ctx, warm, 2*time.Minute, c.exited, c.stderrTail); err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	secs := int(o.latencyWarmup / time.Second)
	if secs == 0 {
		return warm, nil
	}
	txs, err := runPgbench(ctx, b.pg, "-R", strconv.Itoa(o.rate), "-T", strconv.Itoa(secs),
		"-c", strconv.Itoa(o.clients), "-j", strconv.Itoa(o.clients))
	if err != nil {
		return 0, err
	}
	warm += txs
	if _, err := cons.waitCount(ctx, warm, limit, c.exited, c.stderrTail); err != nil {
		return 0, fmt.Errorf("warm-up at %d tx/s: %w", o.rate, err)
	}
	w := cons.latencySlice(1, warm)
	slices.Sort(w)
	r.WarmupP50Ms, r.WarmupP99Ms = ms(quantile(w, 0.50)), ms(quantile(w, 0.99))
	return warm, nil
}

// sampleSlotLag samples the slot's lag (WAL written minus what capture
// confirmed) every 250 ms until the returned stop is called (again: the
// same samples), which returns the samples: it tells a slow capture from a
// slow publisher.
func sampleSlotLag(ctx context.Context, url, slot string) (stop func() []int64) {
	lagCtx, cancel := context.WithCancel(ctx)
	done := make(chan []int64, 1)
	go func() {
		var lags []int64
		defer func() { done <- lags }()
		lc, err := pgx.Connect(lagCtx, url)
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
	return sync.OnceValue(func() []int64 {
		cancel()
		return <-done
	})
}

// latencyFigures sets the run's latency figures from what cons read after
// the warm-up's warm records (cons closed).
func (r *Result) latencyFigures(cons *consumer, warm int64, start time.Time) {
	lat, arr := cons.latencies[warm:], cons.arrivals[warm:]
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	r.LatencyP50Ms = ms(quantile(sorted, 0.50))
	r.LatencyP99Ms = ms(quantile(sorted, 0.99))
	r.LatencyMaxMs = ms(sorted[len(sorted)-1])
	produced := slices.Clone(cons.produced[warm:])
	slices.Sort(produced)
	r.ProducedP50Ms, r.ProducedP99Ms = ms(quantile(produced, 0.50)), ms(quantile(produced, 0.99))
	r.latencies, r.arrivals, r.start = lat, arr, start
}

// latencyRig is what the latency run runs on: its slot, the store server,
// the topic's consumer, the CPU watchers and the worker.
type latencyRig struct {
	w      *workload
	slot   string
	c      *child
	cons   *consumer
	procs  *others
	closes []func() // in the order to call them
}

// startLatencyRig sets the rig up; close it whether or not it fails.
func (b *bench) startLatencyRig(ctx context.Context) (*latencyRig, error) {
	rg := &latencyRig{w: &workload{name: "latency", publication: "bench_latency", topic: pgbenchTopic,
		rules: b.rules + "/pgbench", tables: pgbenchTables}}
	rg.slot = rg.w.slot("full")
	conn, err := pgx.Connect(ctx, b.pg.URL())
	if err != nil {
		return rg, err
	}
	rg.onClose(func() { conn.Close(context.Background()) })
	if err := rg.w.createSlots(ctx, conn, []string{"full"}); err != nil {
		return rg, err
	}
	rg.onClose(func() { _ = rg.w.dropSlots(context.Background(), b.pg.URL()) })
	srv, err := b.startServer(ctx, 0, rg.w, "full")
	if err != nil {
		return rg, err
	}
	rg.onClose(func() { _ = srv.stop() })
	from, err := prepareTopic(ctx, b.brokers, rg.w.topic)
	if err != nil {
		return rg, err
	}
	if rg.cons, err = startConsumer(b.brokers, rg.w.topic, from, true); err != nil {
		return rg, err
	}
	rg.onClose(rg.cons.close)
	cfg := b.workerConfig("full", rg.w, "full")
	cfg.StoreURL = srv.listenAddr()
	rg.procs = watchOthers(ctx, b.pg.URL(), srv, rg.slot, &b.kafka)
	rg.onClose(rg.procs.stop)
	if rg.c, err = startChild(cfg); err != nil {
		return rg, err
	}
	rg.onClose(func() { _ = rg.c.stop() })
	return rg, nil
}

// onClose adds f to what close calls first (as a defer would).
func (rg *latencyRig) onClose(f func()) { rg.closes = append([]func(){f}, rg.closes...) }

func (rg *latencyRig) close() {
	for _, f := range rg.closes {
		f()
	}
}
