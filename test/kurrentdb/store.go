package kurrentdb

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// store is the log and its index. The log's bytes are the file in the data
// directory (wal.go) or, in memory, a memLog; the index (index.go) locates
// every record in them and a bounded cache (cache.go) keeps recent and hot
// records decoded. So memory grows with the number of records and streams
// (about 8 bytes per record and 13 per stream, outside the Go heap), not
// with their bytes.
//
// One mutex guards the index and the state below; it is held to check and
// reserve an append (microseconds; a stream lookup may read an event's head
// from the log) and to locate what a read returns, never across an fsync or
// while a reader reads event bodies: those are read after the lock is
// released, from the cache or the log (records below visible are durable
// and never change).
//
// Visibility: records are numbered by ordinal in position order; [0,
// visible) are durable (synced, or in memory simply committed) and are all
// readers and subscriptions see; [visible, n) are reserved and waiting for
// their fsync, kept in unsynced. Write checks (expected revision,
// idempotency) see everything reserved, so two appends to one stream in the
// same fsync batch get consecutive revisions.
type store struct {
	mu         sync.Mutex
	ix         *index // nil once closed
	visible    uint32
	watermark  uint64    // position of record visible-1; 0 while none
	visibleEnd uint64    // log offset after the last visible frame
	next       uint64    // log offset of the next frame
	unsynced   []*record // records [visible, ix.n)
	frame      []byte    // commitLocked's encoding buffer
	heads      heads
	tombs      map[string]uint32   // stream -> ordinal of its tombstone
	metas      map[string][]metaAt // X -> the $metadata records of $$X, in order
	ids        *idCache
	cache      *recordCache
	lr         io.ReaderAt   // the log: the wal's file, or mem
	mem        *memLog       // in memory mode; nil with a data directory
	changed    chan struct{} // closed and replaced whenever visible moves
	failed     error
	closed     bool

	wal    *wal // nil in memory mode
	now    func() time.Time
	logger *slog.Logger
}

// metaAt is a $metadata record of $$X and its parsed content.
type metaAt struct {
	ord  uint32
	meta *streamMeta
}

func newStore(logger *slog.Logger, cacheSize int) *store {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	return &store{
		ix:      newIndex(),
		next:    uint64(len(fileHeader)),
		tombs:   map[string]uint32{},
		metas:   map[string][]metaAt{},
		ids:     newIDCache(idCacheLimit),
		cache:   newRecordCache(cacheSize),
		changed: make(chan struct{}),
		now:     time.Now,
		logger:  logger,
	}
}

// inMemory makes the store keep its log in memory.
func (st *store) inMemory() error {
	st.mem = &memLog{}
	st.lr = st.mem
	st.visibleEnd = uint64(len(fileHeader))
	return st.mem.append([]byte(fileHeader))
}

// headLocked returns the stream and revision of the event at ord.
func (st *store) headLocked(ord uint32) (head, error) {
	if h, ok := st.heads.get(ord); ok {
		return h, nil
	}
	if ord >= st.visible {
		r := st.unsynced[ord-st.visible]
		return head{r.Stream, r.Revision}, nil
	}
	if r := st.cache.get(ord); r != nil {
		return head{r.Stream, r.Revision}, nil
	}
	name, rev, err := readHeadAt(st.lr, st.ix.pos(ord))
	if err != nil {
		return head{}, st.readError(err)
	}
	h := head{name, rev}
	st.heads.put(ord, h)
	return h, nil
}

// lookupLocked finds stream name in the table (see streamTable.find).
func (st *store) lookupLocked(name string) (probe, uint32, bool, error) {
	return st.ix.table.find(st.ix.table.hash(name), func(ord uint32) (bool, error) {
		h, err := st.headLocked(ord)
		return h.stream == name, err
	})
}

// tailLocked returns the last event of stream name, reserved ones included:
// its ordinal and revision; ok is false for a stream without events.
func (st *store) tailLocked(name string) (tail uint32, rev int64, ok bool, err error) {
	_, tail, ok, err = st.lookupLocked(name)
	if !ok || err != nil {
		return noOrd, -1, false, err
	}
	h, err := st.headLocked(tail)
	return tail, h.rev, err == nil, err
}

// indexLocked numbers and indexes r (reserved, or replayed from the log).
func (st *store) indexLocked(r *record) error {
	ix := st.ix
	if r.isTombstone() {
		ord, err := ix.add(r.Position, noOrd)
		if err != nil {
			return err
		}
		r.ord = ord
		st.tombs[r.Stream] = ord
		return nil
	}
	p, old, found, err := st.lookupLocked(r.Stream)
	if err != nil {
		return err
	}
	prev := uint32(noOrd)
	if found {
		prev = old
	}
	ord, err := ix.add(r.Position, prev)
	if err != nil {
		return err
	}
	r.ord = ord
	if err := ix.table.set(p, ord, found); err != nil {
		return err
	}
	ix.link(prev, ord, r.Revision)
	st.heads.put(ord, head{r.Stream, r.Revision})
	if isMetaStream(r.Stream) && r.Type == metadataType {
		base := baseStream(r.Stream)
		st.metas[base] = append(st.metas[base], metaAt{ord: ord, meta: parseMeta(r.Data)})
	}
	return nil
}

// commitLocked reserves recs as one frame: assigns positions, indexes them
// and hands the frame to the wal (or, in memory, makes it visible at once).
// It returns the position of the last record. An error here (no memory for
// the index) stops the store like a failed write.
func (st *store) commitLocked(recs []*record) (uint64, error) {
	st.frame = appendFrame(st.frame[:0], st.next, recs)
	frame := st.frame // reused: the wal and the memLog copy it
	st.next += uint64(len(frame))
	for _, r := range recs {
		st.unsynced = append(st.unsynced, r)
		if err := st.indexLocked(r); err != nil {
			return 0, st.failLocked(&StorageError{Path: "the index", Op: "indexing", Err: err})
		}
		st.ids.put(r.ID, idEntry{stream: r.Stream, rev: r.Revision})
		st.cache.put(r.ord, r)
	}
	last := recs[len(recs)-1].Position
	if st.wal != nil {
		st.wal.enqueue(frame, st.ix.n, st.next)
		return last, nil
	}
	if err := st.mem.append(frame); err != nil {
		return 0, st.failLocked(&StorageError{Path: "memory", Op: "appending", Err: err})
	}
	st.markVisibleLocked(st.ix.n, st.next)
	return last, nil
}

// markVisibleLocked makes records [0, n) visible; the log's visible bytes
// end at end.
func (st *store) markVisibleLocked(n uint32, end uint64) {
	if n <= st.visible || st.ix == nil {
		return
	}
	drop := n - st.visible
	clear(st.unsynced[:drop])
	st.unsynced = st.unsynced[drop:]
	st.visible = n
	st.watermark = st.ix.pos(n - 1)
	st.visibleEnd = end
	close(st.changed)
	st.changed = make(chan struct{})
}

// markVisible is called by the wal after the frames up to record n (log
// offset end) are synced.
func (st *store) markVisible(n uint32, end uint64) {
	st.mu.Lock()
	st.markVisibleLocked(n, end)
	st.mu.Unlock()
}

// fail stops the store accepting writes and wakes every waiter.
func (st *store) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	_ = st.failLocked(err)
}

func (st *store) failLocked(err error) error {
	if st.failed == nil {
		st.failed = err
		st.logger.Error("kurrentdb: log write failed; no further writes are accepted", "err", err)
	}
	close(st.changed)
	st.changed = make(chan struct{})
	return st.failed
}

// readError maps a failed read of the log: after Close it is ErrClosed
// (the file or memory is gone), else a StorageError.
func (st *store) readError(err error) error {
	if errors.Is(err, ErrClosed) || errors.Is(err, os.ErrClosed) {
		return ErrClosed
	}
	return &StorageError{Path: "the log", Op: "reading", Err: err}
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
// below ordinal limit (st.visible for readers, st.ix.n for writes).
func (st *store) metaLocked(name string, limit uint32) *streamMeta {
	ms := st.metas[name]
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].ord < limit {
			return ms[i].meta
		}
	}
	return nil
}

// tombstonedLocked: stream name (or X for $$X) has a tombstone below limit.
func (st *store) tombstonedLocked(name string, limit uint32) bool {
	t, ok := st.tombs[baseStream(name)]
	return ok && t < limit
}

func (st *store) lastRevisionLocked(name string) (int64, error) {
	_, rev, _, err := st.tailLocked(name)
	return rev, err
}

func (st *store) hasMetaLocked(name string) (bool, error) {
	_, _, ok, err := st.tailLocked("$$" + name)
	return ok, err
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

// streamState is a stream as readers see it (at the watermark).
type streamState struct {
	tombstoned  bool
	ok          bool // readable: has visible events and is not soft-deleted
	tail        uint32
	tailRev     int64 // the tail's revision (reserved events included)
	first, last int64 // readable revisions (first > last: none); last is set even when !ok
	meta        *streamMeta
}

// lastVisibleLocked is the last visible revision of the stream whose tail
// (reserved events included) is tail at revision rev; -1: none.
func (st *store) lastVisibleLocked(tail uint32, rev int64) int64 {
	for o := tail; rev >= 0 && o >= st.visible; rev-- {
		o = st.ix.prev.at(o)
	}
	return rev
}

// visibleRangeLocked returns the first and last revisions a stream read may
// return, honouring $tb, $maxCount and, for $$ streams, an implicit
// $maxCount of 1. ok is false for a missing or soft-deleted stream (last is
// then still the last visible revision).
func (st *store) visibleRangeLocked(name string) (streamState, error) {
	ss := streamState{tail: noOrd, last: -1, tombstoned: st.tombstonedLocked(name, st.visible)}
	tail, rev, ok, err := st.tailLocked(name)
	if !ok || err != nil {
		return ss, err
	}
	ss.tail, ss.tailRev = tail, rev
	last := st.lastVisibleLocked(tail, rev)
	ss.last = last
	if last < 0 {
		return ss, nil
	}
	if isMetaStream(name) {
		ss.first, ss.ok = last, true
		return ss, nil
	}
	meta := st.metaLocked(name, st.visible)
	ss.meta = meta
	if meta.softDeleted() {
		return ss, nil
	}
	if meta != nil {
		if meta.truncateBefore > ss.first {
			ss.first = meta.truncateBefore
		}
		if meta.maxCount > 0 && last-meta.maxCount+1 > ss.first {
			ss.first = last - meta.maxCount + 1
		}
	}
	ss.ok = true
	return ss, nil
}

// readStream locates, in one locked section, the revisions lo..hi that pick
// chooses from the stream's state (lo > hi: none); back lists them newest
// first. The state is returned whatever pick decides.
func (st *store) readStream(name string, pick func(ss *streamState) (lo, hi int64, back bool)) (streamState, []loc, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return streamState{}, nil, ErrClosed
	}
	ss, err := st.visibleRangeLocked(name)
	if err != nil || ss.tombstoned || !ss.ok {
		return ss, nil, err
	}
	lo, hi, back := pick(&ss)
	lo, hi = max(lo, 0), min(hi, ss.last)
	if lo > hi {
		return ss, nil, nil
	}
	return ss, st.ix.span(ss.tail, ss.tailRev, lo, hi, back), nil
}

// readStreamFrom returns up to max visible events of name from revision
// next on, the visible tombstone of the stream if any, and the change
// channel taken in the same locked read.
func (st *store) readStreamFrom(name string, next int64, max int) ([]*record, *record, <-chan struct{}, error) {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, nil, nil, ErrClosed
	}
	var locs []loc
	tail, rev, ok, err := st.tailLocked(name)
	if err != nil {
		st.mu.Unlock()
		return nil, nil, nil, err
	}
	if ok {
		if last := st.lastVisibleLocked(tail, rev); next >= 0 && next <= last {
			locs = st.ix.span(tail, rev, next, min(last, next+int64(max)-1), false)
		}
	}
	var tomb []loc
	if t, ok := st.tombs[name]; ok && t < st.visible {
		tomb = []loc{{ord: t, pos: st.ix.pos(t)}}
	}
	ch := st.changed
	st.mu.Unlock()
	recs, err := st.fetch(locs, true)
	if err != nil {
		return nil, nil, nil, err
	}
	var tr *record
	if tomb != nil {
		t, err := st.fetch(tomb, true)
		if err != nil {
			return nil, nil, nil, err
		}
		tr = t[0]
	}
	return recs, tr, ch, nil
}

// searchLocked is the first visible ordinal at cursor or after it (strictly
// after when !inclusive).
func (st *store) searchLocked(cursor uint64, inclusive bool) uint32 {
	return uint32(sort.Search(int(st.visible), func(i int) bool {
		p := st.ix.pos(uint32(i))
		if inclusive {
			return p >= cursor
		}
		return p > cursor
	}))
}

// rangeLocked returns the locations of visible ordinals [i, j) and where
// the last one's bytes end at the latest (the next record, or the end of
// the visible log).
func (st *store) rangeLocked(i, j uint32) ([]loc, uint64) {
	locs := make([]loc, j-i)
	for k := range locs {
		o := i + uint32(k)
		locs[k] = loc{ord: o, pos: st.ix.pos(o)}
	}
	end := st.visibleEnd
	if j < st.visible {
		end = st.ix.pos(j)
	}
	return locs, end
}

// readAll returns up to max visible records of $all after cursor (at or
// after it when inclusive), with the change channel taken in the same
// locked read: if the slice is empty, a receive on the channel returns once
// more is visible.
func (st *store) readAll(cursor uint64, inclusive bool, max int) ([]*record, <-chan struct{}, error) {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, nil, ErrClosed
	}
	i := st.searchLocked(cursor, inclusive)
	j := uint32(min(uint64(i)+uint64(max), uint64(st.visible)))
	locs, end := st.rangeLocked(i, j)
	ch := st.changed
	st.mu.Unlock()
	recs, err := st.fetchRange(locs, end)
	return recs, ch, err
}

// readAllBackwards returns up to max visible records before cursor
// (exclusive), newest first; cursor 0 means the end.
func (st *store) readAllBackwards(cursor uint64, max int) ([]*record, error) {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, ErrClosed
	}
	j := st.visible
	if cursor != 0 {
		j = st.searchLocked(cursor, true)
	}
	i := uint32(0)
	if uint64(j) > uint64(max) {
		i = j - uint32(max)
	}
	locs, end := st.rangeLocked(i, j)
	st.mu.Unlock()
	recs, err := st.fetchRange(locs, end)
	if err != nil {
		return nil, err
	}
	for a, b := 0, len(recs)-1; a < b; a, b = a+1, b-1 {
		recs[a], recs[b] = recs[b], recs[a]
	}
	return recs, nil
}

// watermarkNow is the position of the last visible record (0: none).
func (st *store) watermarkNow() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.watermark
}

// fetch returns the (visible) records at locs from the cache or the log;
// keep puts what it reads from the log into the cache (point reads).
func (st *store) fetch(locs []loc, keep bool) ([]*record, error) {
	out := make([]*record, len(locs))
	for i, l := range locs {
		if r := st.cache.get(l.ord); r != nil {
			out[i] = r
			continue
		}
		r, err := readRecordAt(st.lr, l.pos)
		if err != nil {
			return nil, st.readError(err)
		}
		r.ord = l.ord
		if keep {
			st.cache.put(l.ord, r)
		}
		out[i] = r
	}
	return out, nil
}

// rangeRead bounds one read of consecutive records from the log.
const rangeRead = 1 << 20

// fetchRange returns the records at locs, consecutive ordinals ascending
// whose last one's bytes end at or before end: from the cache while it has
// them, else with one read of the log per rangeRead bytes. What it reads is
// not cached (a catch-up scan would push out what others read).
func (st *store) fetchRange(locs []loc, end uint64) ([]*record, error) {
	out := make([]*record, len(locs))
	for k := 0; k < len(locs); {
		if r := st.cache.get(locs[k].ord); r != nil {
			out[k] = r
			k++
			continue
		}
		start := locs[k].pos
		j := k + 1
		for j < len(locs) && locs[j].pos-start <= rangeRead {
			j++
		}
		stop := end
		if j < len(locs) {
			stop = locs[j].pos
		}
		buf := make([]byte, stop-start)
		if n, err := st.lr.ReadAt(buf, int64(start)); n < len(buf) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return nil, st.readError(err)
		}
		for ; k < j; k++ {
			v, _, err := scanEvent(buf[locs[k].pos-start:])
			if err != nil {
				return nil, st.readError(err)
			}
			r := v.alias(locs[k].pos) // buf is this range's alone

			r.ord = locs[k].ord
			out[k] = r
		}
	}
	return out, nil
}

// resolveLink resolves a "$>" link event ("N@stream") to its target (nil:
// not a link, or no such visible event).
func (st *store) resolveLink(r *record) (*record, error) {
	if r.Type != "$>" {
		return nil, nil
	}
	data := string(r.Data)
	at := strings.IndexByte(data, '@')
	if at <= 0 {
		return nil, nil
	}
	var n int64
	for _, c := range data[:at] {
		if c < '0' || c > '9' || n > math.MaxInt64/10 {
			return nil, nil
		}
		n = n*10 + int64(c-'0')
	}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, ErrClosed
	}
	var locs []loc
	tail, rev, ok, err := st.tailLocked(data[at+1:])
	if ok && n <= st.lastVisibleLocked(tail, rev) {
		o := st.ix.ordOf(tail, rev, n)
		locs = []loc{{ord: o, pos: st.ix.pos(o)}}
	}
	st.mu.Unlock()
	if err != nil || len(locs) == 0 {
		return nil, err
	}
	recs, err := st.fetch(locs, true)
	if err != nil {
		return nil, err
	}
	return recs[0], nil
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

// release frees the index and the in-memory log; the store must be closed
// and the wal stopped.
func (st *store) release() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ix != nil {
		st.ix.free()
		st.ix = nil
	}
	if st.mem != nil {
		st.mem.free()
	}
	st.unsynced = nil
}

// evictIndex drops the index's older chunks from memory (index.evict).
func (st *store) evictIndex() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ix != nil {
		st.ix.evict()
	}
}

// Footprint is what a server holds, for benchmarks and logs.
type Footprint struct {
	Records     int   // records in the log (events, tombstones, metadata)
	Streams     int   // streams with at least one event
	LogBytes    int64 // bytes of the log
	IndexBytes  int   // memory the index holds mapped (outside the Go heap); with a data directory its per-record arrays' newest chunks only
	IndexFile   int   // bytes of the index in scratch files in the data directory (0 in memory)
	MemLogBytes int   // memory mapped for the in-memory log (0 with a data directory)
	CacheHits   int64 // record cache hits since start
	CacheMisses int64 // record cache misses (read from the log) since start
}

func (st *store) footprint() Footprint {
	st.mu.Lock()
	var f Footprint
	if st.ix != nil {
		f.Records, f.IndexBytes, f.IndexFile = int(st.ix.n), st.ix.memory(), st.ix.fileBytes()
		for i := range st.ix.table.shards {
			f.Streams += st.ix.table.shards[i].used
		}
	}
	f.LogBytes = int64(st.next)
	mem := st.mem
	st.mu.Unlock()
	if mem != nil {
		f.MemLogBytes = mem.bytes()
	}
	st.cache.mu.Lock()
	f.CacheHits, f.CacheMisses = st.cache.hits, st.cache.misses
	st.cache.mu.Unlock()
	return f
}
