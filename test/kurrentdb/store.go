package kurrentdb

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// store is the log and its indexes. One mutex guards the in-memory state; it
// is held only to check and reserve an append (microseconds), never across a
// disk write or fsync: those happen in the wal goroutine (group commit).
//
// Visibility: log holds every reserved record in position order, but only
// log[:visible] is durable (synced, or in memory mode simply committed).
// Readers and subscriptions see only log[:visible] and records whose
// position is <= watermark. Write checks (expected revision, idempotency) see
// everything reserved, so two appends to one stream in the same fsync batch
// get consecutive revisions.
type store struct {
	mu        sync.Mutex
	log       []*record
	visible   int
	watermark uint64 // position of log[visible-1]; 0 while empty
	next      uint64 // file offset of the next frame
	streams   map[string]*stream
	ids       map[[16]byte]*record // idempotency cache for any/stream_exists (not rebuilt on replay, like the real server's)
	changed   chan struct{}        // closed and replaced whenever watermark moves
	failed    error
	closed    bool

	wal    *wal // nil in memory mode
	now    func() time.Time
	logger *slog.Logger
}

type stream struct {
	events    []*record // events[i].Revision == i
	tombstone *record
}

func newStore(logger *slog.Logger) *store {
	return &store{
		next:    uint64(len(fileHeader)),
		streams: map[string]*stream{},
		ids:     map[[16]byte]*record{},
		changed: make(chan struct{}),
		now:     time.Now,
		logger:  logger,
	}
}

func (st *store) streamLocked(name string) *stream {
	s := st.streams[name]
	if s == nil {
		s = &stream{}
		st.streams[name] = s
	}
	return s
}

// indexLocked adds a decoded or reserved record to the stream index.
func (st *store) indexLocked(r *record) {
	s := st.streamLocked(r.Stream)
	if r.isTombstone() {
		s.tombstone = r
	} else {
		s.events = append(s.events, r)
	}
	if isMetaStream(r.Stream) && r.Type == metadataType {
		r.meta = parseMeta(r.Data)
	}
	st.log = append(st.log, r)
}

// commitLocked reserves recs as one frame: assigns positions, indexes them
// and hands the frame to the wal (or, in memory, makes it visible at once).
// It returns the position of the last record.
func (st *store) commitLocked(recs []*record) uint64 {
	frame := encodeFrame(st.next, recs)
	st.next += uint64(len(frame))
	for _, r := range recs {
		st.indexLocked(r)
		st.ids[r.ID] = r
	}
	last := recs[len(recs)-1].Position
	if st.wal == nil {
		st.markVisibleLocked(len(st.log))
	} else {
		st.wal.enqueue(frame, len(st.log))
	}
	return last
}

func (st *store) markVisibleLocked(n int) {
	if n <= st.visible {
		return
	}
	st.visible = n
	st.watermark = st.log[n-1].Position
	close(st.changed)
	st.changed = make(chan struct{})
}

// markVisible is called by the wal after the frames up to log[:n] are synced.
func (st *store) markVisible(n int) {
	st.mu.Lock()
	st.markVisibleLocked(n)
	st.mu.Unlock()
}

// fail stops the store accepting writes and wakes every waiter.
func (st *store) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.failed == nil {
		st.failed = err
		st.logger.Error("kurrentdb: log write failed; no further writes are accepted", "err", err)
	}
	close(st.changed)
	st.changed = make(chan struct{})
}

// waitVisible blocks until the record at pos is durable and visible.
func (st *store) waitVisible(ctx context.Context, pos uint64) error {
	for {
		st.mu.Lock()
		if st.watermark >= pos {
			st.mu.Unlock()
			return nil
		}
		if st.failed != nil {
			err := st.failed
			st.mu.Unlock()
			return err
		}
		if st.closed {
			st.mu.Unlock()
			return ErrClosed
		}
		ch := st.changed
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// baseStream returns X for $$X and name otherwise.
func baseStream(name string) string {
	if isMetaStream(name) {
		return name[2:]
	}
	return name
}

// metaLocked returns the metadata of stream name from its latest $$ record
// at or below limit (use math.MaxUint64 for the reserved view).
func (st *store) metaLocked(name string, limit uint64) *streamMeta {
	ms := st.streams["$$"+name]
	if ms == nil {
		return nil
	}
	for i := len(ms.events) - 1; i >= 0; i-- {
		if ms.events[i].Position <= limit {
			return ms.events[i].meta
		}
	}
	return nil
}

func (st *store) tombstonedLocked(name string, limit uint64) bool {
	s := st.streams[baseStream(name)]
	return s != nil && s.tombstone != nil && s.tombstone.Position <= limit
}

func (st *store) lastRevisionLocked(name string) int64 {
	if s := st.streams[name]; s != nil {
		return int64(len(s.events)) - 1
	}
	return -1
}

func (st *store) hasMetaLocked(name string) bool {
	ms := st.streams["$$"+name]
	return ms != nil && len(ms.events) > 0
}

// hiddenFromAll reports the system streams $all never shows, filtered or
// not (EventFilter.cs DefaultAllFilterStrategy): $epoch-information and the
// checkpoint and parked-message streams of persistent subscriptions to $all.
func hiddenFromAll(name string) bool {
	const psubAll = "$persistentsubscription-$all::"
	return name == "$epoch-information" ||
		(strings.HasPrefix(name, psubAll) &&
			(strings.HasSuffix(name[len(psubAll):], "-checkpoint") || strings.HasSuffix(name[len(psubAll):], "-parked")))
}

// visibleRangeLocked returns the first and last revisions a stream read may
// return (first > last: nothing), honouring $tb, $maxCount and, for $$
// streams, an implicit $maxCount of 1. ok is false for a missing or
// soft-deleted stream (last is then still the last visible revision).
func (st *store) visibleRangeLocked(name string) (s *stream, first, last int64, meta *streamMeta, ok bool) {
	s = st.streams[name]
	if s == nil {
		return nil, 0, -1, nil, false
	}
	last = int64(len(s.events)) - 1
	for last >= 0 && s.events[last].Position > st.watermark {
		last--
	}
	if last < 0 {
		return s, 0, -1, nil, false
	}
	if isMetaStream(name) {
		return s, last, last, nil, true
	}
	meta = st.metaLocked(name, st.watermark)
	if meta.softDeleted() {
		return s, 0, last, meta, false
	}
	if meta != nil {
		if meta.truncateBefore > first {
			first = meta.truncateBefore
		}
		if meta.maxCount > 0 && last-meta.maxCount+1 > first {
			first = last - meta.maxCount + 1
		}
	}
	return s, first, last, meta, true
}

// readAfterLocked returns up to max visible records of $all after cursor
// (at or after it when inclusive), with the current change channel: if the
// slice is empty, a receive on the channel returns once more is visible.
func (st *store) readAllLocked(cursor uint64, inclusive bool, max int) []*record {
	vis := st.log[:st.visible]
	i := sort.Search(len(vis), func(i int) bool {
		if inclusive {
			return vis[i].Position >= cursor
		}
		return vis[i].Position > cursor
	})
	end := i + max
	if end > len(vis) {
		end = len(vis)
	}
	out := make([]*record, end-i)
	copy(out, vis[i:end])
	return out
}

func (st *store) readAll(cursor uint64, inclusive bool, max int) ([]*record, <-chan struct{}, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return nil, nil, ErrClosed
	}
	return st.readAllLocked(cursor, inclusive, max), st.changed, nil
}

// readAllBackwards returns up to max visible records before cursor
// (exclusive), newest first; cursor 0 means the end.
func (st *store) readAllBackwards(cursor uint64, max int) []*record {
	st.mu.Lock()
	defer st.mu.Unlock()
	vis := st.log[:st.visible]
	i := len(vis)
	if cursor != 0 {
		i = sort.Search(len(vis), func(i int) bool { return vis[i].Position >= cursor })
	}
	out := make([]*record, 0, min(max, i))
	for j := i - 1; j >= 0 && len(out) < max; j-- {
		out = append(out, vis[j])
	}
	return out
}

// resolveLinkLocked resolves a "$>" link event ("N@stream") to its target.
func (st *store) resolveLinkLocked(r *record) *record {
	if r.Type != "$>" {
		return nil
	}
	data := string(r.Data)
	at := strings.IndexByte(data, '@')
	if at <= 0 {
		return nil
	}
	var n int64
	for _, c := range data[:at] {
		if c < '0' || c > '9' || n > math.MaxInt64/10 {
			return nil
		}
		n = n*10 + int64(c-'0')
	}
	s := st.streams[data[at+1:]]
	if s == nil || n >= int64(len(s.events)) || s.events[n].Position > st.watermark {
		return nil
	}
	return s.events[n]
}

func (st *store) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return
	}
	st.closed = true
	close(st.changed)
	st.changed = make(chan struct{})
}
