package kurrentdb

import "sync"

// DefaultCacheSize is the default bound of the record cache (Options.CacheSize).
const DefaultCacheSize = 16 << 20

// recordCache keeps decoded records by ordinal, bounded by their bytes. It
// is two generations of maps: puts and hits go to the young one; once it
// holds half the bound, it becomes the old one and the previous old one is
// dropped. A hit in the old generation moves the record to the young one,
// so what is read or written often stays and a scan of old records pushes
// out at most one generation. Records are put when they are reserved (so
// live subscribers and tail reads hit) and when a point read (a stream
// read, a link, a tail) fetches them from the log; range reads of $all
// (catch-up) do not put what they read. Safe for concurrent use.
type recordCache struct {
	mu       sync.Mutex
	half     int // bytes per generation
	young    map[uint32]*record
	old      map[uint32]*record
	youngLen int
	hits     int64
	misses   int64
}

func newRecordCache(bytes int) *recordCache {
	return &recordCache{half: max(bytes/2, 1), young: map[uint32]*record{}}
}

// recordBytes is a record's memory as the cache counts it.
func recordBytes(r *record) int {
	return 160 + len(r.Stream) + len(r.Type) + len(r.ContentType) + len(r.Metadata) + len(r.Data)
}

func (c *recordCache) get(ord uint32) *record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.young[ord]; r != nil {
		c.hits++
		return r
	}
	if r := c.old[ord]; r != nil {
		c.hits++
		delete(c.old, ord)
		c.addLocked(ord, r)
		return r
	}
	c.misses++
	return nil
}

func (c *recordCache) put(ord uint32, r *record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.young[ord] == nil {
		c.addLocked(ord, r)
	}
}

func (c *recordCache) addLocked(ord uint32, r *record) {
	c.young[ord] = r
	c.youngLen += recordBytes(r)
	if c.youngLen >= c.half {
		c.old, c.young, c.youngLen = c.young, map[uint32]*record{}, 0
	}
}

// heads caches, for recent stream tails, the stream's name and the tail's
// revision: what a stream lookup needs to check a table slot (index.go) and
// an append needs as the current revision. A miss reads the head of the
// event from the log (nameAndRevision). Two generations of headsGen
// entries; used under the store lock only.
type heads struct {
	young, old map[uint32]head
}

type head struct {
	stream string
	rev    int64
}

const headsGen = 1 << 15

func (h *heads) get(ord uint32) (head, bool) {
	if v, ok := h.young[ord]; ok {
		return v, true
	}
	v, ok := h.old[ord]
	return v, ok
}

func (h *heads) put(ord uint32, v head) {
	if h.young == nil || len(h.young) >= headsGen {
		h.old, h.young = h.young, make(map[uint32]head, 64)
	}
	h.young[ord] = v
}

// idCache is the idempotency cache of appends with expected revision any or
// stream_exists: event id -> (stream, revision) of the events this server
// has appended since it started (not rebuilt from the log, like the real
// server's). It models KurrentDB's committed-events cache (IndexWriter.cs,
// BoundedCache.cs): first in, first out, bounded to 8 MiB counted as the
// real one counts an entry (16 + 4 + 8 bytes and the stream name's .NET
// string size, MemSizer.SizeOf), a repeated id queued again but keeping
// its first value. Used under the store lock only.
type idCache struct {
	max   int64
	size  int64
	m     map[[16]byte]idEntry
	queue [][16]byte
	head  int // queue[head:] is the queue
}

type idEntry struct {
	stream string
	rev    int64
}

// idCacheLimit is ESConsts.CommitedEventsMemCacheLimit.
const idCacheLimit = 8 << 20

func newIDCache(max int64) *idCache { return &idCache{max: max, m: map[[16]byte]idEntry{}} }

// idEntrySize is the real cache's size of an entry (IndexWriter.cs:
// 16 + 4 + IntPtr.Size + MemSizer.SizeOf(streamId) on a 64-bit server).
func idEntrySize(stream string) int64 {
	n := int64(16 + 4 + 8)
	if l := utf16Len(stream); l > 0 {
		n += int64((20 + 2*l + 1 + 7) &^ 7)
	}
	return n
}

func (c *idCache) get(id [16]byte) (idEntry, bool) {
	e, ok := c.m[id]
	return e, ok
}

func (c *idCache) put(id [16]byte, e idEntry) {
	for len(c.queue)-c.head > 0 && c.size > c.max {
		old := c.queue[c.head]
		c.queue[c.head] = [16]byte{}
		c.head++
		if v, ok := c.m[old]; ok {
			c.size -= idEntrySize(v.stream)
			delete(c.m, old)
		}
	}
	if c.head > len(c.queue)/2 && c.head > 1024 {
		c.queue = append(c.queue[:0:0], c.queue[c.head:]...)
		c.head = 0
	}
	c.size += idEntrySize(e.stream)
	c.queue = append(c.queue, id)
	if _, dup := c.m[id]; !dup {
		c.m[id] = e
	}
}
