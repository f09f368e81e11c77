package postgres

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestWindowDecide: the watermark rule on one chunk attempt of relation 42
// whose read saw xmin 100, xmax 110, in progress 105 and 107 (107 already
// committed in pg_xact).
func TestWindowDecide(t *testing.T) {
	vis, err := parseVisibility("100:110:105,107", []string{"107"})
	if err != nil {
		t.Fatal(err)
	}
	ring := func(xid uint32, rels ...uint32) ringTx {
		r := ringTx{xid: xid}
		for _, o := range rels {
			r.rels[r.n] = o
			r.n++
		}
		return r
	}
	for _, c := range []struct {
		name    string
		w       window
		waitFor []uint64
		drop    []string
		dropAll bool
	}{
		{name: "a change the read did not see, streamed before the low watermark, voids the attempt",
			w: window{before: []ringTx{ring(105, 42)}, seen: map[uint32]bool{107: true}}, waitFor: []uint64{105}},
		{name: "one on another table does not",
			w: window{before: []ringTx{ring(105, 7)}, seen: map[uint32]bool{107: true}}},
		{name: "a committed one neither before nor between the watermarks voids it",
			w: window{before: []ringTx{ring(105, 7)}, seen: map[uint32]bool{}}, waitFor: []uint64{107}},
		{name: "between the watermarks: rows changed by invisible transactions are dropped, by visible ones kept",
			w: window{before: []ringTx{ring(99, 42)}, seen: map[uint32]bool{103: true, 105: true, 107: true, 111: true},
				touches: []touch{{xid: 103, key: "[2]"}, {xid: 105, key: "[3]"}, {xid: 107, key: "[4]"}, {xid: 111, key: "[1]"}}},
			drop: []string{"[1]", "[3]", "[4]"}},
		{name: "an invisible TRUNCATE drops every row",
			w: window{seen: map[uint32]bool{107: true, 112: true}, touches: []touch{{xid: 112, all: true}}}, dropAll: true},
		{name: "a visible TRUNCATE is in the read",
			w: window{seen: map[uint32]bool{107: true, 101: true}, touches: []touch{{xid: 101, all: true}}}},
	} {
		d := c.w.decide(vis, 42)
		var drop []string
		for k := range d.drop {
			drop = append(drop, k)
		}
		slices.Sort(drop)
		if !reflect.DeepEqual(d.waitFor, c.waitFor) || !reflect.DeepEqual(drop, c.drop) || d.dropAll != c.dropAll {
			t.Errorf("%s: waitFor %v drop %v dropAll %v; want %v %v %v", c.name, d.waitFor, drop, d.dropAll, c.waitFor, c.drop, c.dropAll)
		}
	}
}

// TestVisibilityWidensAcrossWraparound: a 32-bit xid from the stream is the
// full id nearest to the snapshot's xmax, across a 2^32 boundary too.
func TestVisibilityWidensAcrossWraparound(t *testing.T) {
	v, err := parseVisibility("4294967290:4294967300:4294967298", nil)
	if err != nil {
		t.Fatal(err)
	}
	for xid, want := range map[uint32]uint64{4294967294: 4294967294, 2: 4294967298, 3: 4294967299, 4: 4294967300} {
		if got := v.widen(xid); got != want {
			t.Errorf("widen(%d) = %d; want %d", xid, got, want)
		}
	}
	if v.invisible(4294967293) || !v.invisible(2) || !v.invisible(4) {
		t.Error("visible: want xid 4294967293 seen, 2 (in progress) and 4 (at xmax) not")
	}
	if _, err := parseVisibility("1:2", nil); err == nil {
		t.Error("a snapshot without xip accepted")
	}
}

// TestPacerSpacesChunks: at 100 rows/s a chunk of 50 rows that started at
// t0 lets the next start at t0+500ms, not before; no rate, no wait.
func TestPacerSpacesChunks(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := pacer{rate: 100}
	if d := p.delay(t0); d != 0 {
		t.Errorf("first chunk waits %s", d)
	}
	p.add(50, t0)
	for at, want := range map[time.Duration]time.Duration{100 * time.Millisecond: 400 * time.Millisecond, 500 * time.Millisecond: 0, time.Second: 0} {
		if d := p.delay(t0.Add(at)); d != want {
			t.Errorf("delay at t0+%s = %s; want %s", at, d, want)
		}
	}
	free := pacer{}
	free.add(1_000_000, t0)
	if d := free.delay(t0); d != 0 {
		t.Errorf("without a rate: delay %s", d)
	}
}
