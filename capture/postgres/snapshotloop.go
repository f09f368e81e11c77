package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pglogrepl"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// The receive loop's part of snapshots: it remembers the last transactions
// (txRing), opens a window at a chunk attempt's low watermark, notes in it
// the keys that transactions change in the chunk's table, and at the high
// watermark decides (window.decide) and emits the chunk's rows as changes
// of the high watermark's transaction. All of it runs on the Run goroutine.

// snapBegin starts a streamed transaction.
func (st *streamState) snapBegin(xid uint32) { st.ring.begin(xid) }

// snapCommit ends a streamed transaction.
func (st *streamState) snapCommit(commit contract.LSN) {
	st.ring.commit(commit)
	for _, w := range st.windows {
		w.seen[st.ring.cur.xid] = true
	}
}

// observe notes a row change of the open transaction: for the ring, the
// relation it changed; for each open window on that relation, the keys it
// changed (old and new: an update may change the key).
func (st *streamState) observe(rel *relation, c *contract.Change) {
	st.ring.touched(rel.oid)
	for _, w := range st.windows {
		if w.at.tbl.oid != rel.oid {
			continue
		}
		if c.Op == contract.OpTruncate {
			w.touches = append(w.touches, touch{xid: st.tx.XID, all: true})
			continue
		}
		for _, vals := range []map[string]any{c.Old, c.New} {
			if k, ok := matchKey(vals, w.at.tbl.matchNames); ok {
				w.touches = append(w.touches, touch{xid: st.tx.XID, key: k})
			}
		}
	}
}

// matchKey is the canonical form of the values of names in vals (a JSON
// array), false when one is missing.
func matchKey(vals map[string]any, names []string) (string, bool) {
	if vals == nil || len(names) == 0 {
		return "", false
	}
	b := append(make([]byte, 0, 32), '[')
	for i, n := range names {
		v, ok := vals[n]
		if !ok {
			return "", false
		}
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		nb, err := contract.AppendJSON(b, v, contract.UnchangedMarker)
		if err != nil {
			nb = contract.AppendString(b, fmt.Sprintf("%T:%v", v, v)) // NaN and the like: still one form per value
		}
		b = nb
	}
	return string(append(b, ']')), true
}

// snapMessage handles a logical message with SnapshotPrefix: a request or
// cancellation (saved before the loop goes on), or a chunk attempt's
// watermark. Messages of other slots, of attempts this session did not
// register (an earlier session's or process's, delivered again), and
// non-transactional ones are ignored.
func (s *Source) snapMessage(ctx context.Context, st *streamState, m *pglogrepl.LogicalDecodingMessage) error {
	var msg snapshotMessage
	if !m.Transactional || !st.inTx || json.Unmarshal(m.Content, &msg) != nil || msg.Slot != s.cfg.Slot {
		return nil
	}
	switch msg.Kind {
	case msgRequest:
		if !snapshotIDRE.MatchString(msg.ID) {
			s.log.Warn("capture: ignoring a snapshot request with an invalid id", "id", msg.ID)
			return nil
		}
		return s.snap.request(ctx, msg, st.tx.CommitLSN)
	case msgCancel:
		return s.snap.cancel(ctx, msg.ID)
	case msgLow:
		// An attempt the reader gave up (its connection failed between
		// the watermarks) has no high watermark to come: every watermark
		// it committed is before this one. Forget its window.
		st.windows = slices.DeleteFunc(st.windows, func(w *window) bool { return s.snap.lookup(w.at.nonce) == nil })
		if a := s.snap.lookup(msg.Attempt); a != nil {
			st.windows = append(st.windows, &window{at: a, lw: st.tx.CommitLSN, before: st.ring.snapshot(), seen: map[uint32]bool{}})
		}
	case msgHigh:
		for i, w := range st.windows {
			if w.at.nonce == msg.Attempt {
				st.windows = append(st.windows[:i], st.windows[i+1:]...)
				return s.highWatermark(ctx, st, w)
			}
		}
		if a := s.snap.lookup(msg.Attempt); a != nil {
			// Its low watermark came before this session's stream started.
			deliver(a, attemptResult{err: fmt.Errorf("snapshot chunk of %s: the low watermark was not seen", a.tbl.name)})
		}
	}
	return nil
}

// deliver hands the loop's result to the reader, once.
func deliver(a *attempt, r attemptResult) {
	select {
	case a.result <- r:
	default:
	}
}

// highWatermark decides a chunk attempt (window.decide) and emits its rows
// that neither a concurrent change dropped nor an earlier attempt emitted,
// as OpSnapshot changes of the high watermark's transaction: so each lands
// in its stream after every change the read saw and before every change it
// did not.
func (s *Source) highWatermark(ctx context.Context, st *streamState, w *window) error {
	a := w.at
	rows, vis := s.snap.readOf(a)
	res := attemptResult{hw: st.tx.CommitLSN, pending: map[string]bool{}}
	if vis == nil {
		res.err = fmt.Errorf("snapshot chunk of %s: its high watermark came before its read", a.tbl.name)
		deliver(a, res)
		return nil
	}
	d := w.decide(vis, a.tbl.oid)
	if len(d.waitFor) > 0 {
		res.waitFor = d.waitFor
		deliver(a, res)
		return nil
	}
	t := a.tbl
	schema, name := SplitTable(t.name)
	for _, row := range rows {
		vals := make(map[string]any, len(t.cols))
		for j, c := range t.cols {
			if row[j] == nil {
				vals[c.Name] = nil
				continue
			}
			typ, err := s.types.resolve(ctx, st.conn, c.TypeOID)
			if err != nil {
				return fmt.Errorf("resolving column %s of %s: %w", c.Name, t.name, err)
			}
			vals[c.Name] = s.decodeValue(typ, row[j])
		}
		mk, _ := matchKey(vals, t.matchNames)
		if a.only != nil && !a.only[mk] {
			continue
		}
		if d.dropAll || d.drop[mk] {
			res.pending[mk] = true
			continue
		}
		key := mk
		if t.ctid {
			pos := make(map[string]any, len(t.order))
			for i, k := range t.keyIdx {
				pos[t.order[i]] = string(row[k])
			}
			key, _ = matchKey(pos, t.order)
		}
		c := &contract.Change{Op: contract.OpSnapshot, Schema: schema, Table: name, Key: t.keyNames, New: vals,
			Snapshot: &contract.SnapshotRow{ID: a.snap, Key: key, Recheck: a.recheck}}
		if err := s.emit(ctx, st, c, nil, 0); err != nil {
			return err
		}
		res.emitted++
	}
	deliver(a, res)
	return nil
}
