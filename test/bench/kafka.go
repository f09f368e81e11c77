package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// prepareTopic creates topic (one partition) if it is missing and returns
// its end offset: a scenario's records are the ones after it.
func prepareTopic(ctx context.Context, brokers []string, topic string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, 1, -1, nil, topic)
	if err != nil {
		return 0, fmt.Errorf("creating topic %s: %w", topic, err)
	}
	if r, ok := resp[topic]; ok && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("creating topic %s: %w", topic, r.Err)
	}
	// A topic just created may not be known to every broker's metadata yet:
	// poll until its end offset is listed (at most 30 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			if o, ok := offs.Lookup(topic, 0); ok && o.Err == nil {
				return o.Offset, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("topic %s: no end offset after 30 s (%v)", topic, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling the broker's metadata
		}
	}
}

// consumer reads a topic's partition 0 from an offset with
// isolation.level=read_committed and counts the records; with latencies it
// also keeps each record's times (recordTimes).
type consumer struct {
	cl *kgo.Client

	mu      sync.Mutex
	count   int64
	changed chan struct{}
	keep    bool
	times   []recordTimes // with latencies: per record read, in order
	badTime int64
	done    chan struct{}
}

func startConsumer(brokers []string, topic string, from int64, latencies bool) (*consumer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return nil, err
	}
	c := &consumer{cl: cl, changed: make(chan struct{}), keep: latencies, done: make(chan struct{})}
	go c.run()
	return c, nil
}

// recordTimes is one record's times: its source commit (the ce_time
// header, the commit time Postgres recorded), when the store wrote its
// event (resolved after the run, storedTimes), its producer timestamp, and
// when the consumer received it, all on this machine's clock. event is the
// stored event's id: ce_id up to its "/" (publish/doc.go, Records).
type recordTimes struct {
	commit, stored, produced, arrived time.Time
	event                             string
}

// latency is commit to Kafka: the consumer's receipt minus the commit.
func (t recordTimes) latency() time.Duration { return t.arrived.Sub(t.commit) }

// toStore is the capture stage: the store's write of the event minus the
// commit.
func (t recordTimes) toStore() time.Duration { return t.stored.Sub(t.commit) }

// toProducer is the part of the latency before the publisher's Kafka
// transaction: the producer timestamp minus the commit.
func (t recordTimes) toProducer() time.Duration { return t.produced.Sub(t.commit) }

// headerTimes reads a record's ce_time and ce_id headers: false when
// either is missing or ce_time does not parse.
func headerTimes(r *kgo.Record) (recordTimes, bool) {
	var t recordTimes
	var haveTime bool
	for _, h := range r.Headers {
		switch h.Key {
		case kafka.HeaderTime:
			at, err := time.Parse(time.RFC3339Nano, string(h.Value))
			if err != nil {
				return t, false
			}
			t.commit, haveTime = at, true
		case kafka.HeaderID:
			t.event, _, _ = strings.Cut(string(h.Value), "/")
		}
	}
	return t, haveTime && t.event != ""
}

func (c *consumer) run() {
	defer close(c.done)
	for {
		fs := c.cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return
		}
		now := time.Now()
		var n, bad int64
		var times []recordTimes
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if !c.keep {
				return
			}
			t, ok := headerTimes(r)
			if !ok {
				bad++
				return
			}
			t.produced, t.arrived = r.Timestamp, now
			times = append(times, t)
		})
		if n > 0 {
			c.mu.Lock()
			c.count += n
			c.badTime += bad
			c.times = append(c.times, times...)
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}
	}
}

// waitCount waits until n records have been read, or fails after limit
// (or when failed, the worker's exit, closes).
func (c *consumer) waitCount(ctx context.Context, n int64, limit time.Duration, failed <-chan struct{}, why func() string) (time.Time, error) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got, ch := c.count, c.changed
		c.mu.Unlock()
		if got >= n {
			return time.Now(), nil
		}
		select {
		case <-ch:
		case <-failed:
			return time.Time{}, fmt.Errorf("%d of %d integration events read from Kafka when the worker stopped: %s", got, n, why())
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("%d of %d integration events read from Kafka after %s: %s", got, n, limit, why())
		}
	}
}

func (c *consumer) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// close stops the consumer; its figures are final after it.
func (c *consumer) close() {
	c.cl.Close()
	<-c.done
}
