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

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// runLatency is the steady-rate run: pgbench at a fixed rate (--rate)
// through the full pipeline to Kafka, live. Each integration event's
// latency is the instant a read_committed consumer receives it minus its
// source commit time (ce_time), on the same machine's clock.
//
// After one transaction all the way to Kafka, one pgbench run at the rate
// lasts the warm-up and the measured run: the measured run is every
// transaction committed from the warm-up's end on, in the steady state.
// (Two pgbench runs left the pipeline idle for about a second between them
// while the bench waited for the warm-up's last records, and the second
// run's start, four new connections after a pause, was the measured run's
// worst second in each of the runs timed for it.)
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
	w, c, cons := rig.w, rig.c, rig.cons
	if _, err := runPgbench(ctx, b.pg, "-t", "1", "-c", "1"); err != nil {
		return r, err
	}
	if _, err := cons.waitCount(ctx, 1, 2*time.Minute, c.exited, c.stderrTail); err != nil {
		return r, fmt.Errorf("the first transaction: %w", err)
	}
	m, err := b.measureAtRate(ctx, rig)
	if err != nil {
		return r, err
	}
	all := 1 + m.txs
	doneAt, err := cons.waitCount(ctx, all, limit, c.exited, c.stderrTail)
	if err != nil {
		return r, fmt.Errorf("topic %s: %w", w.topic, err)
	}
	if len(m.lags) > 0 {
		sl := slices.Clone(m.lags)
		slices.Sort(sl)
		r.SlotLagP50Bytes, r.SlotLagMaxBytes = sl[len(sl)/2], sl[len(sl)-1]
	}
	cpu1, rss, err := c.usage()
	if err != nil {
		return r, err
	}
	cons.close()
	if n := cons.total(); n != all {
		return r, fmt.Errorf("topic %s: %d integration events read; want exactly %d", w.topic, n, all)
	}
	if cons.badTime > 0 || int64(len(cons.times)) != all {
		return r, fmt.Errorf("topic %s: %d records without a readable ce_time or ce_id header", w.topic, all-int64(len(cons.times)))
	}
	if err := storedTimes(ctx, rig.srv.listenAddr(), cons.times); err != nil {
		return r, err
	}
	measured := r.latencyFigures(cons, m.start)
	if measured == 0 {
		return r, fmt.Errorf("topic %s: none of the %d transactions committed after the %s warm-up", w.topic, m.txs, o.latencyWarmup)
	}
	r.Transactions, r.Changes, r.Events, r.Records = measured, 4*measured, 4*measured, measured // as the pgbench workload
	r.CPUSecPerMChanges = (cpu1 - m.cpu0) / float64(r.Changes) * 1e6
	rig.procs.end(&r)
	r.series = c.progressSeries()
	if err := c.stop(); err != nil {
		return r, err
	}
	r.Seconds = doneAt.Sub(m.start).Seconds()
	r.ChangesPerSec = float64(r.Changes) / r.Seconds
	r.EventsPerSec = float64(r.Events) / r.Seconds
	r.RecordsPerSec = float64(r.Records) / r.Seconds
	r.PeakRSSMiB = rss
	r.RateTxPerSec = o.rate
	r.WorkloadDesc = fmt.Sprintf("pgbench TPC-B-like at %d tx/s (--rate), scale %d, %d clients: one run of %s, the first %s a warm-up; %d transactions committed after it measured", o.rate, o.scale, o.clients, o.latencyWarmup+o.latencyDuration, o.latencyWarmup, measured)
	return r, nil
}

// quantile is the nearest-rank quantile of sorted (not empty).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// atRate is what measureAtRate saw: the measured run's start (the
// warm-up's end), the worker's CPU then, pgbench's transactions (warm-up
// and measured run) and the slot's lag samples over the measured run.
type atRate struct {
	start time.Time
	cpu0  float64
	txs   int64
	lags  []int64
}

// measureAtRate runs pgbench at the rate for -latency-warmup plus
// -latency-duration and, when the warm-up has passed, starts the measured
// interval: the worker's CPU, the other processes' (procs.mark) and the
// slot's lag sampling. It returns when pgbench has ended. A just-started
// broker compiles its hot paths in its first seconds (its p99 was 200-350
// ms per second for about 10 s, then under 100), where a production broker
// is long warm; the warm-up's latencies are reported apart.
func (b *bench) measureAtRate(ctx context.Context, rig *latencyRig) (atRate, error) {
	o := b.o
	var m atRate
	type result struct {
		txs int64
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		txs, err := runPgbench(ctx, b.pg, "-R", strconv.Itoa(o.rate), "-T", strconv.Itoa(int((o.latencyWarmup+o.latencyDuration)/time.Second)),
			"-c", strconv.Itoa(o.clients), "-j", strconv.Itoa(o.clients))
		done <- result{txs, err}
	}()
	select {
	case <-time.After(o.latencyWarmup):
	case res := <-done:
		return m, fmt.Errorf("pgbench ended within the warm-up: %d transactions, %v", res.txs, res.err)
	}
	var err error
	if m.cpu0, _, err = rig.c.usage(); err != nil {
		cancel() // pgbench is not waited for to its end
		<-done
		return m, err
	}
	rig.procs.mark()
	stopLag := sampleSlotLag(ctx, b.pg.URL(), rig.slot)
	defer stopLag()
	m.start = time.Now()
	res := <-done
	m.txs, m.lags = res.txs, stopLag()
	return m, res.err
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

// latencyFigures sets the run's latency figures (cons closed, stored
// times resolved): the measured run's from the records committed at or
// after start, the warm-up's from those before it (the first transaction
// aside); it returns how many were measured.
func (r *Result) latencyFigures(cons *consumer, start time.Time) int64 {
	var measured []recordTimes
	var warm []time.Duration
	for i, t := range cons.times {
		switch {
		case !t.commit.Before(start):
			measured = append(measured, t)
		case i > 0:
			warm = append(warm, t.latency())
		}
	}
	if len(warm) > 0 {
		slices.Sort(warm)
		r.WarmupP50Ms, r.WarmupP99Ms = ms(quantile(warm, 0.50)), ms(quantile(warm, 0.99))
	}
	r.start, r.latencies, r.arrivals = start, nil, nil
	if len(measured) == 0 {
		return 0
	}
	lat, stored, prod := make([]time.Duration, len(measured)), make([]time.Duration, len(measured)), make([]time.Duration, len(measured))
	for i, t := range measured {
		lat[i], stored[i], prod[i] = t.latency(), t.toStore(), t.toProducer()
		r.arrivals = append(r.arrivals, t.arrived)
	}
	r.latencies = slices.Clone(lat)
	slices.Sort(lat)
	r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs = ms(quantile(lat, 0.50)), ms(quantile(lat, 0.99)), ms(lat[len(lat)-1])
	slices.Sort(stored)
	r.StoredP50Ms, r.StoredP99Ms = ms(quantile(stored, 0.50)), ms(quantile(stored, 0.99))
	slices.Sort(prod)
	r.ProducedP50Ms, r.ProducedP99Ms = ms(quantile(prod, 0.50)), ms(quantile(prod, 0.99))
	r.Tail = tailStages(measured, quantile(lat, 0.99))
	return int64(len(measured))
}

// tailStages is where the slowest records' time went: the mean of each
// stage over the records whose latency is at least p99.
func tailStages(measured []recordTimes, p99 time.Duration) *Stages {
	var sum [3]time.Duration
	var n int
	for _, t := range measured {
		if t.latency() < p99 {
			continue
		}
		sum[0] += t.toStore()
		sum[1] += t.produced.Sub(t.stored)
		sum[2] += t.arrived.Sub(t.produced)
		n++
	}
	mean := func(d time.Duration) float64 { return round2(ms(d) / float64(n)) }
	return &Stages{Records: n, CaptureMs: mean(sum[0]), PromoteMs: mean(sum[1]), KafkaMs: mean(sum[2])}
}

// Stages splits a latency in three: capture (the source commit to the
// store writing the event: the walsender, decoding, the rules and the
// append), promotion (the store to the producer timestamp: the $all
// subscription, the promotion rules and the produce call) and Kafka (the
// producer timestamp to the consumer: the transaction's commit and the
// read_committed fetch).
type Stages struct {
	Records   int     `json:"records"`
	CaptureMs float64 `json:"capture_ms"`
	PromoteMs float64 `json:"promote_ms"`
	KafkaMs   float64 `json:"kafka_ms"`
}

// storedTimes sets each record's stored time: the time the store server
// wrote its event ($all read through the project's store client, events
// matched by id). A record whose event is not in the store is an error.
func storedTimes(ctx context.Context, url string, times []recordTimes) error {
	db, err := store.Connect(store.ClientConfig{URL: url})
	if err != nil {
		return err
	}
	defer db.Close()
	created := make(map[string]time.Time, 4*len(times))
	err = db.ReadAll(ctx, contract.StoreFrom{Start: true}, math.MaxUint64, func(ev *store.Recorded) bool {
		created[ev.ID.String()] = ev.Created
		return true
	})
	if err != nil {
		return fmt.Errorf("reading the store's events for their stored times: %w", err)
	}
	for i := range times {
		at, ok := created[times[i].event]
		if !ok {
			return fmt.Errorf("record with ce_id %s/...: no such event in the store (%d events read)", times[i].event, len(created))
		}
		times[i].stored = at
	}
	return nil
}

// latencyRig is what the latency run runs on: its slot, the store server,
// the topic's consumer, the CPU watchers and the worker.
type latencyRig struct {
	w      *workload
	slot   string
	c      *child
	srv    *child // the store server
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
	rg.srv = srv
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
