package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

const dlStream = "dl-test"

// dlIndex is where the test's builder puts a refused event's dead letter
// (as capture does: after every dead letter of the change).
const dlIndex = 1<<31 + 1<<30

// deadLetters records what the appender asked to dead-letter.
type deadLetters struct {
	mu      sync.Mutex
	refused []store.Refused
}

func (d *deadLetters) build(r store.Refused) store.Event {
	d.mu.Lock()
	d.refused = append(d.refused, r)
	d.mu.Unlock()
	data, _ := json.Marshal(map[string]any{"stream": r.Stream, "pos": r.Pos.String(), "error": r.Err.Error()})
	return store.Event{Stream: dlStream, Type: "DeadLetter", Data: data,
		Source: contract.Source{Table: "public.acct", Pos: contract.Pos{CommitLSN: r.Pos.CommitLSN, Ordinal: r.Pos.Ordinal, Index: dlIndex + r.Pos.Index}}}
}

func (d *deadLetters) list() []store.Refused {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]store.Refused(nil), d.refused...)
}

func ev(stream string, lsn contract.LSN, ord uint64, data string) store.Event {
	return store.Event{Stream: stream, Type: "T", Data: []byte(data),
		Source: contract.Source{Table: "public.acct", Pos: contract.Pos{CommitLSN: lsn, Ordinal: ord}}}
}

func blob(n int) string { return `"` + strings.Repeat("x", n) + `"` }

// TestStoreRefusalIsDeadLettered: an event the store refuses as too large
// after Add accepted it, by its per-event limit (MaxAppendEventSize) or by
// its append limit (MaxAppendSize), is dead-lettered through the builder,
// in its transaction, in position order in the dead-letter stream (before a
// dead letter of a later transaction that was added earlier than the
// refusal came back), never retried as it was; the events around it are
// stored; the limit is learned, and Add refuses later events over it.
func TestStoreRefusalIsDeadLettered(t *testing.T) { bothPaths(t, testStoreRefusalIsDeadLettered) }

func testStoreRefusalIsDeadLettered(t *testing.T, p appendPath) {
	t.Run("event limit", func(t *testing.T) {
		// Latency makes big-1's refusal come back well after the later
		// dead letter (tx 200) could have been stored: three small events
		// of big-1 go first, alone, 40 ms each.
		srv := kurrentdbtest.Start(t, kurrentdb.Options{MaxAppendEventSize: 2000, Faults: kurrentdb.Faults{AppendLatency: 40 * time.Millisecond}})
		db := kurrentdbtest.Client(t, srv.URL())
		var dls deadLetters
		r := start(t, p.on(srv), db, store.Config{})
		r.a.SetDeadLetter(dlStream, dls.build)
		txs := []tx{
			{lsn: 100, events: []store.Event{ev("acct-1", 100, 0, `{}`), ev("big-1", 100, 1, `{}`), ev("big-1", 100, 2, `{}`),
				ev("big-1", 100, 3, `{}`), ev("big-1", 100, 4, blob(3000)), ev("acct-2", 100, 5, `{}`)}},
			{lsn: 200, events: []store.Event{ev(dlStream, 200, 0, `{"earlier":"dead letter"}`)}},
		}
		txs[1].events[0].Source.Pos.Index = 1 << 31
		r.feed(t, txs)
		r.waitDurable(t, 200)
		if got := readStream(t, db, "big-1"); len(got) != 3 {
			t.Fatalf("big-1 holds %d events, want the 3 small ones", len(got))
		}
		for _, s := range []string{"acct-1", "acct-2"} {
			if got := readStream(t, db, s); len(got) != 1 {
				t.Fatalf("%s holds %d events, want 1", s, len(got))
			}
		}
		refused := dls.list()
		if len(refused) != 1 || refused[0].Stream != "big-1" || refused[0].Pos != (contract.Pos{CommitLSN: 100, Ordinal: 4}) {
			t.Fatalf("refused = %+v, want big-1's event at 100/4", refused)
		}
		size := 3002 + len(refused[0].Metadata) + 2
		if e := refused[0].Err; e.Store != "maximum append event size" || e.Limit != 2000 || e.Size != size {
			t.Fatalf("refusal = %+v, want the maximum append event size of 2000, size %d", e, size)
		}
		got := readStream(t, db, dlStream)
		if len(got) != 2 || !strings.Contains(got[0].data, `"big-1"`) || got[1].data != `{"earlier":"dead letter"}` {
			t.Fatalf("dead-letter stream = %+v, want big-1's dead letter, then the one of tx 200", got)
		}
		// Learned: Add refuses the next one at once, naming the store's limit.
		if err := r.a.Begin(contract.Tx{CommitLSN: 300}); err != nil {
			t.Fatal(err)
		}
		var tl *store.TooLargeError
		if err := r.a.Add(context.Background(), ev("big-2", 300, 0, blob(3000))); !errors.As(err, &tl) || tl.Store != "maximum append event size" || tl.Limit != 2000 {
			t.Fatalf("Add after the refusal = %v, want the store's maximum append event size of 2000", err)
		}
	})
	t.Run("append limit", func(t *testing.T) {
		srv := kurrentdbtest.Start(t, kurrentdb.Options{MaxAppendSize: 4096})
		db := kurrentdbtest.Client(t, srv.URL())
		var dls deadLetters
		r := start(t, p.on(srv), db, store.Config{})
		r.a.SetDeadLetter(dlStream, dls.build)
		// huge-1 is added first: once many-1's first append is refused, the
		// limit is learned and Add would refuse huge-1 itself.
		many := tx{lsn: 100, events: []store.Event{ev("huge-1", 100, 0, blob(5000))}}
		for o := range 10 {
			many.events = append(many.events, ev("many-1", 100, uint64(o+1), blob(900)))
		}
		r.feed(t, []tx{many})
		r.waitDurable(t, 100)
		if got := readStream(t, db, "many-1"); len(got) != 10 {
			t.Fatalf("many-1 holds %d events, want all 10 (split into appends under the limit)", len(got))
		}
		if got := readStream(t, db, "huge-1"); len(got) != 0 {
			t.Fatalf("huge-1 holds %d events", len(got))
		}
		refused := dls.list()
		if len(refused) != 1 || refused[0].Stream != "huge-1" || refused[0].Err.Store != "maximum append size" || refused[0].Err.Limit != 4096 {
			t.Fatalf("refused = %+v, want huge-1's event over the maximum append size of 4096", refused)
		}
		if got := readStream(t, db, dlStream); len(got) != 1 {
			t.Fatalf("dead-letter stream holds %d events, want 1", len(got))
		}
		// Learned: later appends to many-1 are built under 4096 bytes.
		appends := r.a.Stats().Appends
		more := tx{lsn: 200}
		for o := range 10 {
			more.events = append(more.events, ev("many-1", 200, uint64(o), blob(900)))
		}
		r.feed(t, []tx{more})
		r.waitDurable(t, 200)
		if got := readStream(t, db, "many-1"); len(got) != 20 {
			t.Fatalf("many-1 holds %d events, want 20", len(got))
		}
		// About 1,100 bytes an event as the store counts it: three to an
		// append; refused and split, they would take ten.
		if n := r.a.Stats().Appends - appends; len(dls.list()) != 1 || n < 3 || n >= 10 {
			t.Fatalf("%d dead letters, %d appends for ten events: want none refused, batches under 4096 bytes", len(dls.list()), n)
		}
	})
}

// TestStoreRefusalWithoutDeadLetterStops: without a dead-letter builder, a
// refusal stops the appender with the *TooLargeError; it is never retried.
func TestStoreRefusalWithoutDeadLetterStops(t *testing.T) {
	bothPaths(t, testStoreRefusalWithoutDeadLetterStops)
}

func testStoreRefusalWithoutDeadLetterStops(t *testing.T, p appendPath) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{MaxAppendEventSize: 2000})
	db := kurrentdbtest.Client(t, srv.URL())
	r := start(t, p.on(srv), db, store.Config{})
	_ = r.tryFeed([]tx{{lsn: 100, events: []store.Event{ev("big-1", 100, 0, blob(3000))}}})
	err := r.wait()
	var tl *store.TooLargeError
	if !errors.As(err, &tl) || tl.Stream != "big-1" || tl.Store != "maximum append event size" {
		t.Fatalf("Run = %v, want the store's refusal of big-1", err)
	}
	if st := r.a.Stats(); st.Retries != 0 {
		t.Fatalf("stats %+v: the refusal was retried", st)
	}
}

// TestRefusedDeadLetterIsReplaced: a dead letter the store refuses as too
// large is replaced by the builder's answer for it, its shortened form at
// its own position, in its transaction (which is then durable); if the
// store refuses that too, the appender stops with the *TooLargeError
// instead of retrying or dropping it.
func TestRefusedDeadLetterIsReplaced(t *testing.T) { bothPaths(t, testRefusedDeadLetterIsReplaced) }

func testRefusedDeadLetterIsReplaced(t *testing.T, p appendPath) {
	for _, c := range []struct {
		name      string
		shortened string // the builder's answer for a refused dead letter
	}{
		{"shortened form stored", `{"shortened":true}`},
		{"shortened form refused too", blob(3000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := kurrentdbtest.Start(t, kurrentdb.Options{MaxAppendEventSize: 2000})
			db := kurrentdbtest.Client(t, srv.URL())
			var dls deadLetters
			r := start(t, p.on(srv), db, store.Config{})
			r.a.SetDeadLetter(dlStream, func(rf store.Refused) store.Event {
				ev := dls.build(rf)
				if rf.Stream == dlStream {
					ev.Data, ev.Source.Pos = []byte(c.shortened), rf.Pos
				}
				return ev
			})
			big := ev(dlStream, 100, 0, blob(3000))
			big.Source.Pos.Index = 1 << 31
			x := []tx{{lsn: 100, events: []store.Event{ev("acct-1", 100, 0, `{}`), big}}}
			if c.shortened != blob(3000) {
				r.feed(t, x)
				r.waitDurable(t, 100)
				got := readStream(t, db, dlStream)
				if len(got) != 1 || got[0].data != c.shortened || got[0].meta["index"] != float64(1<<31) {
					t.Fatalf("dead-letter stream = %+v, want the shortened form at the refused one's position", got)
				}
				if refused := dls.list(); len(refused) != 1 || refused[0].Pos != big.Source.Pos {
					t.Fatalf("refused = %+v, want the dead letter at %s", refused, big.Source.Pos)
				}
				return
			}
			_ = r.tryFeed(x)
			err := r.wait()
			var tl *store.TooLargeError
			if !errors.As(err, &tl) || tl.Stream != dlStream || tl.Store != "maximum append event size" {
				t.Fatalf("Run = %v, want the store's refusal of the shortened dead letter", err)
			}
			if got := readStream(t, db, dlStream); len(got) != 0 {
				t.Fatalf("dead-letter stream = %+v, want nothing stored", got)
			}
			if r.a.Durable() >= 100 {
				t.Fatalf("durable %s: the transaction of the dead letter that could not be stored was reported", r.a.Durable())
			}
		})
	}
}
