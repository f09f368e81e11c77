package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// visibility is an MVCC snapshot as pg_current_snapshot() reports it
// (xmin:xmax:xip, full 64-bit transaction ids): which transactions a chunk's
// read saw. A transaction is visible when it committed and had ended before
// the snapshot was taken: xid < xmin, or xid < xmax and not in xip.
type visibility struct {
	xmin, xmax uint64
	xip        map[uint64]bool
	// inDoubt are the xip transactions whose commit status was already
	// "committed" (pg_xact_status) when the snapshot was taken: their
	// commit record is written, but they were not visible yet (between
	// their WAL flush and their end, as while they wait for a synchronous
	// standby).
	inDoubt map[uint64]bool
}

// parseVisibility reads pg_snapshot's text form "xmin:xmax:xip,xip,...".
func parseVisibility(text string, committed []string) (*visibility, error) {
	parts := strings.Split(text, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("pg_current_snapshot() = %q: want xmin:xmax:xip", text)
	}
	v := &visibility{xip: map[uint64]bool{}, inDoubt: map[uint64]bool{}}
	var err error
	if v.xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return nil, fmt.Errorf("pg_current_snapshot() = %q: %w", text, err)
	}
	if v.xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return nil, fmt.Errorf("pg_current_snapshot() = %q: %w", text, err)
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			id, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("pg_current_snapshot() = %q: %w", text, err)
			}
			v.xip[id] = true
		}
	}
	for _, x := range committed {
		id, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("committed xip %q: %w", x, err)
		}
		v.inDoubt[id] = true
	}
	return v, nil
}

// widen turns a 32-bit xid from the stream into the full id nearest to
// xmax (a streamed transaction is never 2^31 transactions away from a
// snapshot taken while it was recent).
func (v *visibility) widen(xid uint32) uint64 {
	d := int64(int32(uint32(v.xmax) - xid)) // how far below xmax
	full := int64(v.xmax) - d
	if full < 0 {
		return 0
	}
	return uint64(full)
}

// invisible reports whether the committed transaction xid (from the
// stream) was not visible to the snapshot: it ended after the snapshot was
// taken, so the rows read do not show its changes.
func (v *visibility) invisible(xid uint32) bool {
	full := v.widen(xid)
	return full >= v.xmax || v.xip[full]
}

// txRingSize is how many of the last streamed transactions a window keeps
// from before its low watermark (see window.before).
const txRingSize = 8192

// ringTx is one streamed transaction: its xid, commit LSN and the
// relations it changed (up to 4; many: more, as if it changed every one).
type ringTx struct {
	xid    uint32
	commit contract.LSN
	rels   [4]uint32
	n      uint8
	many   bool
}

func (r *ringTx) touches(oid uint32) bool {
	if r.many {
		return true
	}
	for _, o := range r.rels[:r.n] {
		if o == oid {
			return true
		}
	}
	return false
}

// txRing remembers the last txRingSize transactions of the stream. Owned by
// the receive loop.
type txRing struct {
	buf  []ringTx
	next int
	full bool
	cur  ringTx // the transaction being received
}

func (r *txRing) begin(xid uint32) { r.cur = ringTx{xid: xid} }

// touched records that the current transaction changed relation oid.
func (r *txRing) touched(oid uint32) {
	c := &r.cur
	if c.many || c.touches(oid) {
		return
	}
	if int(c.n) == len(c.rels) {
		c.many = true
		return
	}
	c.rels[c.n] = oid
	c.n++
}

func (r *txRing) commit(lsn contract.LSN) {
	if r.buf == nil {
		r.buf = make([]ringTx, txRingSize)
	}
	r.cur.commit = lsn
	r.buf[r.next] = r.cur
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// snapshot copies the remembered transactions, oldest first.
func (r *txRing) snapshot() []ringTx {
	if !r.full {
		return append([]ringTx(nil), r.buf[:r.next]...)
	}
	out := make([]ringTx, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// window is one chunk attempt as the receive loop sees it between its low
// and its high watermark. Owned by the receive loop.
type window struct {
	at *attempt
	lw contract.LSN // the low watermark's commit LSN
	// before are the transactions streamed before the low watermark (the
	// ring's, at the low watermark).
	before []ringTx
	// seen are the transactions streamed between the watermarks; touches
	// the keys (match form) they changed in the chunk's table, and all the
	// ones that truncated it.
	seen    map[uint32]bool
	touches []touch
}

type touch struct {
	xid uint32
	key string // "" with all
	all bool   // a TRUNCATE: every row
}

// decision is what the high watermark decides for a chunk attempt.
type decision struct {
	// waitFor lists transactions that may have changed the chunk's rows
	// before the low watermark although the read did not see them: the
	// attempt is void and must be read again (they will be visible then).
	waitFor []uint64
	// drop are the keys (match form) of rows that a transaction between
	// the watermarks changed and the read did not see: not emitted, read
	// again; dropAll: all of them (a TRUNCATE).
	drop    map[string]bool
	dropAll bool
}

// decide applies the watermark rule to an attempt whose read saw vis, on
// relation oid:
//
//   - a transaction streamed before the low watermark that the read did not
//     see and that changed the table voids the attempt (waitFor); so does
//     one the server called committed when the read began that is neither
//     between the watermarks nor among the remembered ones before them;
//   - a transaction between the watermarks that the read did not see drops
//     the rows it changed (they are read again in a later attempt);
//   - a transaction between the watermarks that the read saw is in the rows
//     as read, and changes nothing.
func (w *window) decide(vis *visibility, oid uint32) decision {
	d := decision{drop: map[string]bool{}}
	before := map[uint64]*ringTx{}
	for i := range w.before {
		before[vis.widen(w.before[i].xid)] = &w.before[i]
	}
	for x := range vis.xip {
		if e := before[x]; e != nil {
			if e.touches(oid) {
				d.waitFor = append(d.waitFor, x)
			}
			continue
		}
		if w.seen[uint32(x)] {
			continue // between the watermarks: its keys are in touches
		}
		if vis.inDoubt[x] {
			// Committed before the read, so streamed before the high
			// watermark, yet neither between the watermarks nor among
			// the remembered transactions before them: it cannot be told
			// apart from one that changed the rows before the low one.
			d.waitFor = append(d.waitFor, x)
		}
	}
	if len(d.waitFor) > 0 {
		return d
	}
	for _, t := range w.touches {
		if !vis.invisible(t.xid) {
			continue
		}
		if t.all {
			d.dropAll = true
			continue
		}
		d.drop[t.key] = true
	}
	return d
}
