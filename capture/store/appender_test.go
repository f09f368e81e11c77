package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

const slot = "test_slot"

// tx is a source transaction of the synthetic workload.
type tx struct {
	lsn    contract.LSN
	events []store.Event
}

// workload makes n transactions starting at LSN base, each with 1-4 events
// spread over streams "acct-0".."acct-<streams-1>", deterministic.
func workload(base contract.LSN, n, streams int) []tx {
	out := make([]tx, n)
	for i := range out {
		lsn := base + contract.LSN(i*100)
		k := 1 + i%4
		t := tx{lsn: lsn}
		for o := 0; o < k; o++ {
			stream := fmt.Sprintf("acct-%d", (i*7+o*3)%streams)
			t.events = append(t.events, store.Event{
				Stream: stream,
				Type:   "Touched",
				Data:   []byte(fmt.Sprintf(`{"tx":%d,"o":%d}`, i, o)),
				Source: contract.Source{Table: "public.acct", Pos: contract.Pos{CommitLSN: lsn, Ordinal: uint64(o)}},
				Extra:  map[string]any{"tenant": fmt.Sprint("t", i%3)},
			})
		}
		out[i] = t
	}
	return out
}

type running struct {
	a      *store.Appender
	done   chan error
	cancel context.CancelFunc
	once   sync.Once
	err    error

	mu      sync.Mutex
	reports []contract.LSN
}

// appendPath is how a test's appender appends: through the official
// client's AppendToStream, or through BatchAppend on a connection of its own.
type appendPath struct {
	batch bool
	url   string
}

func (p appendPath) on(srv *kurrentdb.Server) appendPath {
	p.url = srv.URL()
	return p
}

// bothPaths runs test once per append path.
func bothPaths(t *testing.T, test func(*testing.T, appendPath)) {
	t.Run("Append", func(t *testing.T) { test(t, appendPath{}) })
	t.Run("BatchAppend", func(t *testing.T) { test(t, appendPath{batch: true}) })
}

// start runs an appender on a client of its own to p's server (db is the
// test's client, for reading back).
func start(t *testing.T, p appendPath, _ *esdb.Client, cfg store.Config) *running {
	t.Helper()
	cfg.BatchAppend = cfg.BatchAppend || p.batch
	c, err := store.Connect(store.ClientConfig{URL: p.url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	r := &running{done: make(chan error, 1)}
	user := cfg.OnDurable
	cfg.OnDurable = func(l contract.LSN) {
		r.mu.Lock()
		r.reports = append(r.reports, l)
		r.mu.Unlock()
		if user != nil {
			user(l)
		}
	}
	if cfg.Slot == "" {
		cfg.Slot = slot
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a, err := store.New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		r.stop()
		// The path under test is the one taken: no silent fallback.
		if st := a.Stats(); p.batch && st.BatchAppends != st.Appends || !p.batch && st.BatchAppends != 0 {
			t.Errorf("%d of %d appends went through BatchAppend (batch path: %v)", st.BatchAppends, st.Appends, p.batch)
		}
	})
	return r
}

// durableReports returns the LSNs OnDurable was called with, in order.
func (r *running) durableReports() []contract.LSN {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]contract.LSN(nil), r.reports...)
}

// wait waits for Run to return and returns its error (idempotent).
func (r *running) wait() error {
	r.once.Do(func() { r.err = <-r.done })
	return r.err
}

// stop cancels Run and waits for it.
func (r *running) stop() error {
	r.cancel()
	return r.wait()
}

func (r *running) feed(t *testing.T, txs []tx) {
	t.Helper()
	if err := r.tryFeed(txs); err != nil {
		t.Fatal(err)
	}
}

// tryFeed feeds txs and returns the first error (a fatal appender error
// surfaces from Begin/Add/Commit as well as from Run).
func (r *running) tryFeed(txs []tx) error {
	ctx := context.Background()
	for _, x := range txs {
		if err := r.a.Begin(contract.Tx{CommitLSN: x.lsn}); err != nil {
			return err
		}
		for _, e := range x.events {
			if err := r.a.Add(ctx, e); err != nil {
				return err
			}
		}
		if err := r.a.Commit(contract.Tx{CommitLSN: x.lsn}); err != nil {
			return err
		}
	}
	return nil
}

// waitDurable polls until the durable LSN reaches lsn, failing if Run
// returns first.
func (r *running) waitDurable(t *testing.T, lsn contract.LSN) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for r.a.Durable() < lsn {
		if time.Now().After(deadline) {
			t.Fatalf("durable LSN %s did not reach %s; stats %+v", r.a.Durable(), lsn, r.a.Stats())
		}
		select {
		case err := <-r.done:
			r.once.Do(func() { r.err = err })
			t.Fatalf("appender stopped: %v", err)
		case <-time.After(5 * time.Millisecond): // poll interval
		}
	}
}

type stored struct {
	id   uuid.UUID
	data string
	meta map[string]any
}

func readStream(t *testing.T, db *esdb.Client, name string) []stored {
	t.Helper()
	out, err := readStreamErr(db, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readStreamErr reads a whole stream; safe off the test goroutine.
func readStreamErr(db *esdb.Client, name string) ([]stored, error) {
	rs, err := db.ReadStream(context.Background(), name, esdb.ReadStreamOptions{From: esdb.Start{}}, 1<<20)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []stored
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			var e *esdb.Error
			if errors.As(err, &e) && e.Code() == esdb.ErrorCodeResourceNotFound {
				return nil, nil
			}
			return nil, err
		}
		var m map[string]any
		_ = json.Unmarshal(ev.Event.UserMetadata, &m)
		out = append(out, stored{id: ev.Event.EventID, data: string(ev.Event.Data), meta: m})
	}
}

// expectStreams checks that every stream holds exactly the events of txs for
// it, once each, in position order, with deterministic ids and positions.
func expectStreams(t *testing.T, db *esdb.Client, txs []tx) {
	t.Helper()
	want := map[string][]store.Event{}
	for _, x := range txs {
		for _, e := range x.events {
			want[e.Stream] = append(want[e.Stream], e)
		}
	}
	for stream, evs := range want {
		got := readStream(t, db, stream)
		if len(got) != len(evs) {
			t.Fatalf("stream %s holds %d events; want %d", stream, len(got), len(evs))
		}
		for i, e := range evs {
			g := got[i]
			if g.id != contract.EventID(slot, e.Source.Pos) || g.data != string(e.Data) {
				t.Fatalf("stream %s event %d = %s %s; want %s %s", stream, i, g.id, g.data, contract.EventID(slot, e.Source.Pos), e.Data)
			}
			if g.meta["commitLsn"] != e.Source.Pos.CommitLSN.String() || g.meta["slot"] != slot || g.meta["table"] != "public.acct" ||
				g.meta["$causationId"] != contract.ChangeID(slot, e.Source.Pos.CommitLSN, e.Source.Pos.Ordinal).String() ||
				(e.Extra != nil && g.meta["tenant"] != e.Extra["tenant"]) {
				t.Fatalf("stream %s event %d metadata = %v", stream, i, g.meta)
			}
		}
	}
}

func TestAppendsEveryEventOnceInOrder(t *testing.T) { bothPaths(t, testAppendsEveryEventOnceInOrder) }

func testAppendsEveryEventOnceInOrder(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	r := start(t, p.on(srv), db, store.Config{})
	txs := workload(1000, 300, 40)
	r.feed(t, txs)
	r.waitDurable(t, txs[len(txs)-1].lsn)
	expectStreams(t, db, txs)
	st := r.a.Stats()
	if st.Events != 750 || st.Deduplicated != 0 || st.TailReads != 0 {
		t.Fatalf("stats %+v; want 750 events, no de-duplication, no tail reads (all streams new)", st)
	}
	reports := r.durableReports()
	for i := 1; i < len(reports); i++ {
		if reports[i] < reports[i-1] {
			t.Fatalf("durable reports went backwards: %v", reports)
		}
	}
}

// TestRedeliveryIsDeduplicated is the crash case: a new appender (nothing
// warm) gets transactions re-delivered from an older confirmed position.
// Every event is stored once; streams first written after the window need no
// tail read.
func TestRedeliveryIsDeduplicated(t *testing.T) { bothPaths(t, testRedeliveryIsDeduplicated) }

func testRedeliveryIsDeduplicated(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	txs := workload(1000, 200, 30)
	first := start(t, p.on(srv), db, store.Config{})
	first.feed(t, txs[:120])
	first.waitDurable(t, txs[119].lsn)
	first.stop()

	// Fresh streams that only the new transactions touch.
	extra := workload(1000+200*100, 20, 10)
	for i := range extra {
		for j := range extra[i].events {
			extra[i].events[j].Stream = "fresh-" + extra[i].events[j].Stream
		}
	}
	second := start(t, p.on(srv), db, store.Config{})
	second.feed(t, txs[80:]) // the replay window is txs[80:120]
	second.feed(t, extra)
	second.waitDurable(t, extra[len(extra)-1].lsn)
	expectStreams(t, db, append(append([]tx{}, txs...), extra...))
	st := second.a.Stats()
	if st.Deduplicated == 0 {
		t.Fatalf("stats %+v: the replay window was not de-duplicated", st)
	}
	if st.TailReads > 30 {
		t.Fatalf("stats %+v: more tail reads than streams that existed", st)
	}
}

// TestPartialTransactionIsCompleted: a crash in the middle of a transaction
// left some of its streams written; the re-delivery completes the others and
// doubles none.
func TestPartialTransactionIsCompleted(t *testing.T) { bothPaths(t, testPartialTransactionIsCompleted) }

func testPartialTransactionIsCompleted(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	full := tx{lsn: 5000}
	for o := 0; o < 4; o++ {
		full.events = append(full.events, store.Event{Stream: fmt.Sprintf("order-%d", o), Type: "T", Data: []byte(`{}`),
			Source: contract.Source{Table: "public.acct", Pos: contract.Pos{CommitLSN: 5000, Ordinal: uint64(o)}}})
	}
	partial := tx{lsn: 5000, events: full.events[:2]}
	a := start(t, p.on(srv), db, store.Config{})
	a.feed(t, []tx{partial})
	a.waitDurable(t, 5000)
	a.stop()
	b := start(t, p.on(srv), db, store.Config{})
	b.feed(t, []tx{full})
	b.waitDurable(t, 5000)
	expectStreams(t, db, []tx{full})
}

func TestForeignWriterIsAConflict(t *testing.T) { bothPaths(t, testForeignWriterIsAConflict) }

func testForeignWriterIsAConflict(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	foreign := func(stream string) {
		_, err := db.AppendToStream(context.Background(), stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}},
			esdb.EventData{EventID: uuid.New(), EventType: "Foreign", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Run("warm stream, stop", func(t *testing.T) {
		r := start(t, p.on(srv), db, store.Config{})
		txs := workload(1000, 4, 1) // all on acct-0
		r.feed(t, txs[:2])
		r.waitDurable(t, txs[1].lsn)
		foreign("acct-0")
		_ = r.tryFeed(txs[2:3]) // the conflict may surface here or from Run
		err := r.wait()
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.Stream != "acct-0" {
			t.Fatalf("Run returned %v; want a ConflictError naming acct-0", err)
		}
	})
	t.Run("cold stream, stop", func(t *testing.T) {
		foreign("acct-cold-0")
		r := start(t, p.on(srv), db, store.Config{})
		x := tx{lsn: 100, events: []store.Event{{Stream: "acct-cold-0", Type: "T", Data: []byte(`{}`), Source: contract.Source{Pos: contract.Pos{CommitLSN: 100}}}}}
		_ = r.tryFeed([]tx{x})
		err := r.wait()
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.Stream != "acct-cold-0" {
			t.Fatalf("Run returned %v; want a ConflictError naming acct-cold-0", err)
		}
	})
	t.Run("cold stream with a snapshot row to recheck, stop", func(t *testing.T) {
		// The recheck's read settles the cold stream against its tail
		// before the first append: the foreign tail is the same conflict.
		foreign("item-7")
		r := start(t, p.on(srv), db, store.Config{})
		_ = r.tryFeed([]tx{{lsn: 300, events: []store.Event{snapRow("s1", 7, 300, 0, 100)}}})
		err := r.wait()
		var ce *store.ConflictError
		if !errors.As(err, &ce) || ce.Stream != "item-7" || ce.Actual != 0 {
			t.Fatalf("Run returned %v; want a ConflictError naming item-7 at revision 0", err)
		}
		if got := readStream(t, db, "item-7"); len(got) != 1 {
			t.Fatalf("item-7 holds %d events; want the foreign one only", len(got))
		}
	})
	t.Run("warm stream, reread", func(t *testing.T) {
		r := start(t, p.on(srv), db, store.Config{OnConflict: store.ConflictReread})
		txs := workload(1000, 3, 1)
		for i := range txs {
			for j := range txs[i].events {
				txs[i].events[j].Stream = "reread-0"
			}
		}
		r.feed(t, txs[:1])
		r.waitDurable(t, txs[0].lsn)
		foreign("reread-0")
		r.feed(t, txs[1:])
		r.waitDurable(t, txs[2].lsn)
		got := readStream(t, db, "reread-0")
		want := len(txs[0].events) + 1 + len(txs[1].events) + len(txs[2].events)
		if len(got) != want || got[len(txs[0].events)].meta["slot"] != nil {
			t.Fatalf("stream holds %d events (foreign at %d: %v); want %d with the foreign one after the first transaction", len(got), len(txs[0].events), got[len(txs[0].events)].meta, want)
		}
		if st := r.a.Stats(); st.Conflicts != 1 {
			t.Fatalf("stats %+v; want one conflict recorded", st)
		}
	})
}

// TestTransientErrorsAreRetried: Unavailable and Aborted answers, some after
// the write was stored (unknown outcome), lose and double nothing.
func TestTransientErrorsAreRetried(t *testing.T) { bothPaths(t, testTransientErrorsAreRetried) }

func testTransientErrorsAreRetried(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	if err := srv.SetFaults(kurrentdb.Faults{UnavailableRate: 0.2, AbortedRate: 0.1, FailAfterCommit: true}); err != nil {
		t.Fatal(err)
	}
	r := start(t, p.on(srv), db, store.Config{RetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond})
	txs := workload(1000, 150, 20)
	r.feed(t, txs)
	r.waitDurable(t, txs[len(txs)-1].lsn)
	if err := srv.SetFaults(kurrentdb.Faults{}); err != nil {
		t.Fatal(err)
	}
	expectStreams(t, db, txs)
	if st := r.a.Stats(); st.Retries == 0 {
		t.Fatalf("stats %+v: no fault was injected", st)
	}
}

// TestBackpressureBoundsPendingBytes: with a slow store, Add blocks so the
// bytes held never exceed the bound by more than one event.
func TestBackpressureBoundsPendingBytes(t *testing.T) {
	bothPaths(t, testBackpressureBoundsPendingBytes)
}

func testBackpressureBoundsPendingBytes(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatency: 5 * time.Millisecond}})
	db := kurrentdbtest.Client(t, srv.URL())
	const limit = 4096
	r := start(t, p.on(srv), db, store.Config{MaxPendingBytes: limit, MaxBatchBytes: 1024})
	txs := workload(1000, 200, 50)
	r.feed(t, txs)
	r.waitDurable(t, txs[len(txs)-1].lsn)
	st := r.a.Stats()
	if st.MaxPending > limit+512 {
		t.Fatalf("pending bytes reached %d; bound %d", st.MaxPending, limit)
	}
	expectStreams(t, db, txs)
}

// TestDurableNeverPassesAGap: whenever an LSN is reported durable, every
// event of every transaction up to it is readable, with appends completing
// out of order (random latency, many streams).
func TestDurableNeverPassesAGap(t *testing.T) { bothPaths(t, testDurableNeverPassesAGap) }

func testDurableNeverPassesAGap(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatency: time.Millisecond, AppendLatencyJitter: 4 * time.Millisecond}})
	db := kurrentdbtest.Client(t, srv.URL())
	txs := workload(1000, 60, 25)
	var bad []string
	var mu sync.Mutex
	r := start(t, p.on(srv), db, store.Config{OnDurable: func(l contract.LSN) {
		for _, x := range txs {
			if x.lsn > l {
				break
			}
			for _, e := range x.events {
				found := false
				evs, err := readStreamErr(db, e.Stream)
				if err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
				}
				for _, s := range evs {
					if s.id == contract.EventID(slot, e.Source.Pos) {
						found = true
					}
				}
				if !found {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s reported durable but %s of tx %s is missing", l, e.Stream, x.lsn))
					mu.Unlock()
				}
			}
		}
	}})
	// Three waves, so at least three reports happen whatever the timing;
	// within a wave appends complete out of order.
	for w := 0; w < 3; w++ {
		wave := txs[w*20 : (w+1)*20]
		r.feed(t, wave)
		r.waitDurable(t, wave[len(wave)-1].lsn)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatal(bad[0])
	}
	if n := len(r.durableReports()); n < 3 {
		t.Fatalf("only %d durable reports", n)
	}
}

func TestTooLargeEventIsRefused(t *testing.T) { bothPaths(t, testTooLargeEventIsRefused) }

func testTooLargeEventIsRefused(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	r := start(t, p.on(srv), db, store.Config{MaxBatchBytes: 1000})
	if err := r.a.Begin(contract.Tx{CommitLSN: 1}); err != nil {
		t.Fatal(err)
	}
	err := r.a.Add(context.Background(), store.Event{Stream: "big-1", Type: "T", Data: make([]byte, 2000)})
	var tl *store.TooLargeError
	if !errors.As(err, &tl) || tl.Stream != "big-1" {
		t.Fatalf("Add = %v; want TooLargeError for big-1", err)
	}
}

func TestDeletedStreamStops(t *testing.T) { bothPaths(t, testDeletedStreamStops) }

func testDeletedStreamStops(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	if _, err := db.TombstoneStream(context.Background(), "gone-1", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Any{}}); err != nil {
		t.Fatal(err)
	}
	r := start(t, p.on(srv), db, store.Config{})
	_ = r.tryFeed([]tx{{lsn: 10, events: []store.Event{{Stream: "gone-1", Type: "T", Data: []byte(`{}`), Source: contract.Source{Pos: contract.Pos{CommitLSN: 10}}}}}})
	err := r.wait()
	var de *store.DeletedError
	if !errors.As(err, &de) || de.Stream != "gone-1" {
		t.Fatalf("Run returned %v; want DeletedError for gone-1", err)
	}
}

func TestConfigErrors(t *testing.T) { bothPaths(t, testConfigErrors) }

func testConfigErrors(t *testing.T, p appendPath) {
	_, err := store.New(&store.Client{}, store.Config{MaxInFlight: -1, MaxPendingBytes: 10, MaxBatchBytes: 100})
	if err == nil {
		t.Fatal("New accepted a bad config")
	}
	_, err2 := store.New(&store.Client{}, store.Config{Slot: "s", MaxBatchBytes: 17 << 20, MaxPendingBytes: 32 << 20})
	err = errors.Join(err, err2)
	for _, want := range []string{"slot", "max_in_flight", "max_pending_bytes", "max_batch_bytes (17825792) is over 16767216"} {
		if !contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestSharedCommitLSNIsReportedPerTransaction: snapshot chunks share the
// consistent point as commit LSN, and capture waits for an acknowledgement
// of each; every chunk's durability is reported.
func TestSharedCommitLSNIsReportedPerTransaction(t *testing.T) {
	bothPaths(t, testSharedCommitLSNIsReportedPerTransaction)
}

func testSharedCommitLSNIsReportedPerTransaction(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	r := start(t, p.on(srv), db, store.Config{})
	for chunk := 0; chunk < 3; chunk++ {
		x := tx{lsn: 7000}
		for row := 0; row < 5; row++ {
			ord := uint64(chunk*5 + row)
			x.events = append(x.events, store.Event{Stream: fmt.Sprintf("snap-%d", ord%4), Type: "Snap", Data: []byte(`{}`),
				Source: contract.Source{Table: "public.acct", Pos: contract.Pos{CommitLSN: 7000, Ordinal: ord}}})
		}
		r.feed(t, []tx{x})
		deadline := time.Now().Add(30 * time.Second)
		for len(r.durableReports()) < chunk+1 {
			if time.Now().After(deadline) {
				t.Fatalf("chunk %d was never reported durable (reports %v)", chunk, r.durableReports())
			}
			time.Sleep(2 * time.Millisecond) // poll interval
		}
	}
	if got := r.durableReports(); len(got) != 3 || got[2] != 7000 {
		t.Fatalf("reports %v; want three reports of 0/1B58", got)
	}
}

// A store that does not list BatchAppend (before 21.10) gets every append
// through AppendToStream, with the same result.
func TestBatchAppendFallsBackWhenNotListed(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{NoBatchAppend: true})
	db := kurrentdbtest.Client(t, srv.URL())
	r := start(t, appendPath{}.on(srv), db, store.Config{BatchAppend: true})
	txs := workload(100, 50, 7)
	r.feed(t, txs)
	r.waitDurable(t, txs[len(txs)-1].lsn)
	expectStreams(t, db, txs)
	if st := r.a.Stats(); st.Appends == 0 || st.BatchAppends != 0 {
		t.Fatalf("%d appends, %d through BatchAppend; want every append through AppendToStream", st.Appends, st.BatchAppends)
	}
}
