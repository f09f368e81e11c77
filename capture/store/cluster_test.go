package store_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

// BatchAppend against the stand-in started as a cluster of three (one log,
// see kurrentdb.Cluster): the appender finds the leader by gossip, appends
// there through BatchAppend, and follows it when it moves or dies, storing
// every event once.

// feedAsync feeds txs from a goroutine; the returned channel gives its error.
func feedAsync(r *running, txs []tx) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.tryFeed(txs) }()
	return done
}

// waitEvents polls until the appender has stored at least n events.
func waitEvents(t *testing.T, r *running, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for r.a.Stats().Events < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d events stored within 60 s, want %d; stats %+v", r.a.Stats().Events, n, r.a.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func events(txs []tx) int64 {
	n := 0
	for _, x := range txs {
		n += len(x.events)
	}
	return int64(n)
}

// TestBatchAppendSurvivesLeaderKill: under load, the leader is killed;
// the appender finds the new leader by gossip after the election and goes
// on through BatchAppend. Every event is stored exactly once, in order
// (appends the dead leader had written but not answered are re-sent and
// found stored), every append went through BatchAppend, and the new leader
// served some of them.
func TestBatchAppendSurvivesLeaderKill(t *testing.T) {
	cl := kurrentdbtest.StartCluster(t, kurrentdb.ClusterOptions{
		ElectionDelay: 300 * time.Millisecond,
		Options:       kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatency: time.Millisecond}},
	})
	db := kurrentdbtest.Client(t, cl.URL())
	r := start(t, appendPath{batch: true, url: cl.URL()}, db, store.Config{RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond})
	txs := workload(1000, 4000, 300)
	fed := feedAsync(r, txs)
	waitEvents(t, r, events(txs)/3)
	before := cl.Node(0).Requests()
	if before.BatchAppends == 0 {
		t.Fatalf("the leader served no BatchAppend before the kill: %+v", before)
	}
	if err := cl.Kill(0); err != nil {
		t.Fatal(err)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	r.waitDurable(t, txs[len(txs)-1].lsn)
	expectStreams(t, db, txs)
	st := r.a.Stats()
	if st.Events+st.Deduplicated < events(txs) || st.Retries == 0 {
		t.Fatalf("stats %+v: want every event stored or found stored, and retries after the kill", st)
	}
	if after := cl.Node(1).Requests(); after.BatchAppends == 0 {
		t.Fatalf("the new leader (node 1) served no BatchAppend: %+v", after)
	}
	if cl.Leader() != 1 {
		t.Fatalf("leader %d, want 1", cl.Leader())
	}
}

// syncBuffer is a log sink safe for the appender's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBatchAppendFollowsNotLeader: under load, leadership moves to node 2
// while node 0 stays up; node 0 answers the open call NotLeader, and the
// appender goes straight to the node its trailers name, without asking
// gossip again. Every event is stored exactly once.
func TestBatchAppendFollowsNotLeader(t *testing.T) {
	cl := kurrentdbtest.StartCluster(t, kurrentdb.ClusterOptions{
		Options: kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatency: time.Millisecond}},
	})
	db := kurrentdbtest.Client(t, cl.URL())
	var logs syncBuffer
	r := start(t, appendPath{batch: true, url: cl.URL()}, db, store.Config{
		RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	txs := workload(1000, 4000, 300)
	fed := feedAsync(r, txs)
	waitEvents(t, r, events(txs)/3)
	gossipBefore := 0
	for i := range 3 {
		gossipBefore += int(cl.Node(i).Requests().GossipReads)
	}
	if err := cl.MoveLeader(2); err != nil {
		t.Fatal(err)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	r.waitDurable(t, txs[len(txs)-1].lsn)
	// Counted before the test's own client reads (its first call discovers).
	gossipAfter := 0
	for i := range 3 {
		gossipAfter += int(cl.Node(i).Requests().GossipReads)
	}
	if gossipAfter != gossipBefore {
		t.Fatalf("%d gossip reads after the leader moved, want none (NotLeader names the leader)", gossipAfter-gossipBefore)
	}
	expectStreams(t, db, txs)
	if n := cl.Node(0).Requests().NotLeader; n == 0 {
		t.Fatal("the old leader answered no NotLeader")
	}
	if n := cl.Node(2).Requests().BatchAppends; n == 0 {
		t.Fatal("the new leader (node 2) served no BatchAppend")
	}
	if !strings.Contains(logs.String(), "leader="+cl.Addr(2)) {
		t.Fatalf("no log line names the new leader %s:\n%s", cl.Addr(2), logs.String())
	}
}
