package conformance_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// TestLoadEverySubscriberSeesEveryEventOnceInOrder is the acceptance load
// test: 100,000 events across 1,000 streams from 8 goroutines (appends of 10
// events, each with its exact expected revision) while a $all subscription
// and 10 stream subscriptions run. Five stream subscriptions start before
// the writers and five while they write (so they switch from catch-up to live
// under load). Every subscriber must see every event of its scope exactly
// once, in order.
func TestLoadEverySubscriberSeesEveryEventOnceInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped in -short mode")
	}
	const (
		nStreams  = 1000
		perStream = 100 // 100,000 events in total
		batch     = 10
		writers   = 8
		watched   = 10
	)
	c, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	prefix := "load" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	name := func(i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
	marker := appendOK(t, newStream("marker"), esdb.NoStream{}, evs(1, "Marker")...)

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
		cancel()
	}

	// The $all subscriber checks per-stream order (n == previous+1), counts
	// and strictly increasing positions.
	allSub, err := db.SubscribeToAll(c, esdb.SubscribeToAllOptions{
		From:   esdb.Position{Commit: marker.CommitPosition, Prepare: marker.PreparePosition},
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix + "-"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer allSub.Close()
	var allSeen atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := make([]int, nStreams)
		var lastPos uint64
		for seen := 0; seen < nStreams*perStream; {
			ev := allSub.Recv()
			if ev.SubscriptionDropped != nil {
				fail(fmt.Errorf("$all subscription dropped after %d events: %w", seen, ev.SubscriptionDropped.Error))
				return
			}
			if ev.EventAppeared == nil {
				continue
			}
			r := ev.EventAppeared.OriginalEvent()
			s, n, err := parseLoad(r.Data)
			if err != nil || s < 0 || s >= nStreams || r.StreamID != name(s) || n != next[s] || uint64(n) != r.EventNumber {
				fail(fmt.Errorf("$all event %d: stream %s revision %d data %q: want event %d of %s next", seen, r.StreamID, r.EventNumber, r.Data, next[s], name(s)))
				return
			}
			if r.Position.Commit <= lastPos {
				fail(fmt.Errorf("$all positions not increasing: %d after %d", r.Position.Commit, lastPos))
				return
			}
			lastPos = r.Position.Commit
			next[s]++
			seen++
			allSeen.Store(int64(seen))
		}
	}()

	subscribe := func(i int) {
		sub, err := db.SubscribeToStream(c, name(i), esdb.SubscribeToStreamOptions{From: esdb.Start{}})
		if err != nil {
			fail(fmt.Errorf("subscribing to %s: %w", name(i), err))
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			for n := 0; n < perStream; {
				ev := sub.Recv()
				if ev.SubscriptionDropped != nil {
					fail(fmt.Errorf("subscription to %s dropped after %d events: %w", name(i), n, ev.SubscriptionDropped.Error))
					return
				}
				if ev.EventAppeared == nil {
					continue
				}
				r := ev.EventAppeared.OriginalEvent()
				s, got, err := parseLoad(r.Data)
				if err != nil || s != i || got != n || r.EventNumber != uint64(n) {
					fail(fmt.Errorf("subscription to %s: got revision %d data %q, want event %d", name(i), r.EventNumber, r.Data, n))
					return
				}
				n++
			}
		}()
	}
	for i := 0; i < watched/2; i++ {
		subscribe(i * 97)
	}

	var appended atomic.Int64
	var writersWG sync.WaitGroup
	for w := 0; w < writers; w++ {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for round := 0; round < perStream/batch; round++ {
				for s := w; s < nStreams; s += writers {
					events := make([]esdb.EventData, batch)
					for k := range events {
						n := round*batch + k
						events[k] = esdb.EventData{EventID: uuid.New(), EventType: "Load", ContentType: esdb.ContentTypeBinary,
							Data: []byte(strconv.Itoa(s) + ":" + strconv.Itoa(n))}
					}
					var exp esdb.ExpectedRevision = esdb.NoStream{}
					if round > 0 {
						exp = esdb.Revision(uint64(round*batch - 1))
					}
					if _, err := db.AppendToStream(c, name(s), esdb.AppendToStreamOptions{ExpectedRevision: exp}, events...); err != nil {
						fail(fmt.Errorf("writer %d appending round %d to %s: %w", w, round, name(s), err))
						return
					}
					appended.Add(batch)
				}
			}
		}()
	}
	// Start the other five stream subscriptions once a fifth is written.
	for appended.Load() < nStreams*perStream/5 && c.Err() == nil {
		time.Sleep(5 * time.Millisecond) // polling a counter, not waiting for a server
	}
	for i := watched / 2; i < watched; i++ {
		subscribe(i*97 + 1)
	}
	writersWG.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := allSeen.Load(); got != nStreams*perStream {
		t.Fatalf("$all subscriber saw %d events, want %d", got, nStreams*perStream)
	}
}

func parseLoad(data []byte) (stream, n int, err error) {
	a, b, ok := strings.Cut(string(data), ":")
	if !ok {
		return 0, 0, fmt.Errorf("bad load event %q", data)
	}
	if stream, err = strconv.Atoi(a); err != nil {
		return 0, 0, err
	}
	n, err = strconv.Atoi(b)
	return stream, n, err
}
