package kurrentdb

import (
	"context"
)

// proposed is one event of an append, as the client sent it.
type proposed struct {
	ID          [16]byte
	Type        string
	ContentType string
	Metadata    []byte
	Data        []byte
}

// writeResult is the answer to a successful append, delete or tombstone.
type writeResult struct {
	Revision int64  // last revision of the stream after the write; -1 = no stream
	Position uint64 // position of the last record written (or found, when idempotent)
}

// append checks the expected revision and appends events, following the
// order of checks of the reference (IndexWriter CheckCommit):
//
//  1. tombstoned stream (or tombstoned X for $$X): StreamDeletedError;
//  2. stream_exists: soft-deleted -> StreamDeletedError; no events and no
//     metadata -> WEV; otherwise as any;
//  3. any / stream_exists: if the first proposed id is in the idempotency
//     cache for this stream, all must be (-> success without writing), else
//     WEV; if the first is not there, append;
//  4. exact E (no_stream is -1): E == cur appends; E > cur is WEV; E < cur
//     compares the proposed ids with the stored events E+1, E+2, ...: all
//     equal -> success without writing, any difference (or no events) -> WEV,
//     except no_stream on a soft-deleted stream, which recreates it.
//
// Appending to a soft-deleted stream undeletes it: the events continue the
// numbering, and the stream's metadata is rewritten with $tb = first new
// revision in the same frame. Writing metadata ($$X) of a soft-deleted X
// likewise sets $tb to X's last revision + 1.
//
// It returns after the write is durable (visible).
func (st *store) append(ctx context.Context, name string, exp Expected, events []proposed) (writeResult, error) {
	res, wait, err := st.reserveAppend(name, exp, events)
	if err != nil {
		return writeResult{}, err
	}
	if err := st.waitVisible(ctx, wait); err != nil {
		return writeResult{}, err
	}
	return res, nil
}

func (st *store) writableLocked() error {
	if st.closed {
		return ErrClosed
	}
	return st.failed
}

func (st *store) reserveAppend(name string, exp Expected, events []proposed) (writeResult, uint64, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.writableLocked(); err != nil {
		return writeResult{}, 0, err
	}
	all := st.ix.n // the reserved view: every record so far
	if st.tombstonedLocked(name, all) {
		return writeResult{}, 0, &StreamDeletedError{Stream: name}
	}
	tail, cur, _, err := st.tailLocked(name)
	if err != nil {
		return writeResult{}, 0, err
	}
	softDeleted := !isMetaStream(name) && st.metaLocked(name, all).softDeleted()
	wev := &WrongExpectedVersionError{Stream: name, Expected: exp, Current: cur}
	// stored returns the reserved events of this stream at revisions lo..hi.
	stored := func(lo, hi int64) ([]*record, error) {
		return st.fetchLocked(st.ix.span(tail, cur, lo, hi, false))
	}

	switch exp.Kind {
	case ExpectStreamExists, ExpectAny:
		if exp.Kind == ExpectStreamExists {
			if softDeleted {
				return writeResult{}, 0, &StreamDeletedError{Stream: name}
			}
			hasMeta, err := st.hasMetaLocked(name)
			if err != nil {
				return writeResult{}, 0, err
			}
			if cur < 0 && !hasMeta {
				return writeResult{}, 0, wev
			}
		}
		if len(events) > 0 {
			if first, ok := st.ids.get(events[0].ID); ok && first.stream == name {
				found := first
				for _, e := range events[1:] {
					r, ok := st.ids.get(e.ID)
					if !ok || r.stream != name {
						return writeResult{}, 0, wev
					}
					found = r
				}
				o := st.ix.ordOf(tail, cur, found.rev)
				pos := st.ix.pos(o)
				return writeResult{Revision: found.rev, Position: pos}, pos, nil
			}
		}
	default:
		e, _ := exp.exact()
		switch {
		case e == cur:
		case e > cur:
			return writeResult{}, 0, wev
		case e == -1 && softDeleted && len(events) == 0:
			// no_stream on a soft-deleted stream recreates it.
		case e == -1 && softDeleted:
			first, err := stored(0, 0)
			if err != nil {
				return writeResult{}, 0, err
			}
			if first[0].ID == events[0].ID {
				return st.idempotentLocked(events, e, cur, stored, wev)
			}
		default: // e < cur: an idempotent retry, or a conflict
			return st.idempotentLocked(events, e, cur, stored, wev)
		}
	}

	if len(events) == 0 {
		pos := st.watermark
		if cur >= 0 {
			pos = st.ix.pos(tail)
		}
		return writeResult{Revision: cur, Position: pos}, pos, nil
	}

	created := st.now().UnixNano() / 100
	recs := make([]*record, 0, len(events)+1)
	for i, p := range events {
		r := &record{
			Stream: name, Revision: cur + 1 + int64(i), ID: p.ID,
			Type: p.Type, ContentType: p.ContentType, Created: created,
			Metadata: p.Metadata, Data: p.Data,
		}
		if isMetaStream(name) && p.Type == metadataType {
			base := baseStream(name)
			if st.metaLocked(base, all).softDeleted() {
				baseRev, err := st.lastRevisionLocked(base)
				if err != nil {
					return writeResult{}, 0, err
				}
				r.Data = withTruncateBefore(p.Data, baseRev+1)
			}
		}
		recs = append(recs, r)
	}
	if softDeleted {
		data, err := st.lastMetaDataLocked(name)
		if err != nil {
			return writeResult{}, 0, err
		}
		m, err := st.metadataRecordLocked(name, withTruncateBefore(data, cur+1), created)
		if err != nil {
			return writeResult{}, 0, err
		}
		recs = append(recs, m)
	}
	pos, err := st.commitLocked(recs)
	if err != nil {
		return writeResult{}, 0, err
	}
	return writeResult{Revision: cur + int64(len(events)), Position: pos}, pos, nil
}

// idempotentLocked compares a retry's events, expected after revision e,
// with the stored events e+1, e+2, ...: all equal -> success without
// writing, any difference (or no events, or more than stored) -> WEV.
func (st *store) idempotentLocked(events []proposed, e, cur int64, stored func(lo, hi int64) ([]*record, error), wev error) (writeResult, uint64, error) {
	if len(events) == 0 || e+int64(len(events)) > cur {
		return writeResult{}, 0, wev
	}
	recs, err := stored(e+1, e+int64(len(events)))
	if err != nil {
		return writeResult{}, 0, err
	}
	for i, p := range events {
		if recs[i].ID != p.ID {
			return writeResult{}, 0, wev
		}
	}
	last := recs[len(recs)-1]
	return writeResult{Revision: last.Revision, Position: last.Position}, last.Position, nil
}

// fetchLocked is fetch for reserved records too (under the store lock).
func (st *store) fetchLocked(locs []loc) ([]*record, error) {
	out := make([]*record, len(locs))
	var visible []loc
	var at []int
	for i, l := range locs {
		if l.ord >= st.visible {
			out[i] = st.unsynced[l.ord-st.visible]
			continue
		}
		visible, at = append(visible, l), append(at, i)
	}
	recs, err := st.fetch(visible, true)
	if err != nil {
		return nil, err
	}
	for k, i := range at {
		out[i] = recs[k]
	}
	return out, nil
}

func (st *store) lastMetaDataLocked(name string) ([]byte, error) {
	tail, _, ok, err := st.tailLocked("$$" + name)
	if !ok || err != nil {
		return nil, err
	}
	recs, err := st.fetchLocked([]loc{{ord: tail, pos: st.ix.pos(tail)}})
	if err != nil {
		return nil, err
	}
	return recs[0].Data, nil
}

func (st *store) metadataRecordLocked(name string, data []byte, created int64) (*record, error) {
	rev, err := st.lastRevisionLocked("$$" + name)
	if err != nil {
		return nil, err
	}
	return &record{
		Stream: "$$" + name, Revision: rev + 1, ID: newID(),
		Type: metadataType, ContentType: contentTypeJSON, Created: created, Data: data,
	}, nil
}

// checkDeleteLocked applies the expected revision of a delete or tombstone.
// A stream with no events and no metadata fails with WEV even with any.
func (st *store) checkDeleteLocked(name string, exp Expected, tombstone bool) error {
	all := st.ix.n
	if st.tombstonedLocked(name, all) {
		return &StreamDeletedError{Stream: name}
	}
	cur, err := st.lastRevisionLocked(name)
	if err != nil {
		return err
	}
	hasMeta, err := st.hasMetaLocked(name)
	if err != nil {
		return err
	}
	wev := &WrongExpectedVersionError{Stream: name, Expected: exp, Current: cur}
	exists := cur >= 0 || hasMeta
	switch exp.Kind {
	case ExpectAny:
		if !exists && !tombstone {
			return wev
		}
	case ExpectStreamExists:
		if st.metaLocked(name, all).softDeleted() {
			return &StreamDeletedError{Stream: name}
		}
		if !exists {
			return wev
		}
	default:
		e, _ := exp.exact()
		if e != cur || (!exists && !tombstone) {
			return wev
		}
	}
	return nil
}

// softDelete writes {"$tb": MaxInt64} to $$name.
func (st *store) softDelete(ctx context.Context, name string, exp Expected) (writeResult, error) {
	st.mu.Lock()
	if err := st.writableLocked(); err != nil {
		st.mu.Unlock()
		return writeResult{}, err
	}
	if err := st.checkDeleteLocked(name, exp, false); err != nil {
		st.mu.Unlock()
		return writeResult{}, err
	}
	r, err := st.metadataRecordLocked(name, []byte(`{"$tb":9223372036854775807}`), st.now().UnixNano()/100)
	var pos uint64
	if err == nil {
		pos, err = st.commitLocked([]*record{r})
	}
	st.mu.Unlock()
	if err != nil {
		return writeResult{}, err
	}
	return writeResult{Revision: r.Revision, Position: pos}, st.waitVisible(ctx, pos)
}

// tombstone writes $streamDeleted at revision MaxInt64 to name. Works on a
// never-written stream (expected any or no_stream).
func (st *store) tombstone(ctx context.Context, name string, exp Expected) (writeResult, error) {
	st.mu.Lock()
	if err := st.writableLocked(); err != nil {
		st.mu.Unlock()
		return writeResult{}, err
	}
	if err := st.checkDeleteLocked(name, exp, true); err != nil {
		st.mu.Unlock()
		return writeResult{}, err
	}
	r := &record{
		Stream: name, Revision: tombstoneRevision, ID: newID(), Type: tombstoneType,
		ContentType: contentTypeBinary, Created: st.now().UnixNano() / 100, Data: []byte{},
	}
	pos, err := st.commitLocked([]*record{r})
	st.mu.Unlock()
	if err != nil {
		return writeResult{}, err
	}
	return writeResult{Revision: tombstoneRevision, Position: pos}, st.waitVisible(ctx, pos)
}
