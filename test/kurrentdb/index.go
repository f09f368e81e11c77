package kurrentdb

import (
	"errors"
	"hash/maphash"
	"math"
	"os"
)

// index locates every record of the log without holding any of them: the
// bodies stay in the log (the file with Options.DataDir, else memlog.go) and
// are read back through the record cache (cache.go). Per record it keeps 8
// bytes, per stream about 13; all of it outside the Go heap (offheap.go).
// With a data directory the 8 bytes per record live in scratch files
// (onDisk), and only the newest of them stay in memory: what the server
// holds resident grows with its streams, not with its events.
//
//   - Records are numbered in log order by their ordinal (0, 1, ...; at
//     most 2^32 - 2 of them). pos gives an ordinal's position: a base per
//     block of posBlock ordinals plus a 32-bit offset from it.
//   - prev chains each event to the previous event of its stream (noOrd for
//     a stream's first event, a tombstone or a record of no stream), so a
//     stream is found from its last event (its tail) alone.
//   - table maps a stream name to its tail's ordinal; skips holds, for a
//     stream with skipEvery events or more, the ordinals of revisions
//     skipEvery-1, 2*skipEvery-1, ..., so that a revision is at most
//     skipEvery-1 steps from a known ordinal.
//
// Revisions of a stream are consecutive from 0 (the store never skips one),
// so an event's revision is its tail's revision less the steps back to it.
// All methods are called with the store lock held.
type index struct {
	n       uint32   // records indexed
	posBase []uint64 // position of the first ordinal of each block
	posOff  u32s     // position - its block's base
	prev    u32s     // previous event of the same stream, or noOrd
	table   streamTable
	skips   map[uint32][]uint32 // keyed by the stream's current tail ordinal
}

const (
	noOrd     = math.MaxUint32
	maxOrds   = math.MaxUint32 - 1
	posBlock  = 32 // a block spans < 32 x maxFrameSize < 4 GiB, so offsets fit in 32 bits
	skipEvery = 64
)

var errIndexFull = errors.New("the log holds the most records the index can number (2^32 - 2)")

func newIndex() *index {
	return &index{table: streamTable{seed: maphash.MakeSeed()}, skips: map[uint32][]uint32{}}
}

// onDisk puts the per-record arrays (posOff, prev) in two scratch files in
// dir, created and unlinked at once: the index is rebuilt from the log at
// every start, so nothing of it needs to outlive the process, and a killed
// server leaves nothing behind. Call it before the first add.
func (ix *index) onDisk(dir string) error {
	for _, a := range []*u32s{&ix.posOff, &ix.prev} {
		f, err := os.CreateTemp(dir, "index-*.scratch")
		if err != nil {
			return err // names the path; openWAL says what it was for
		}
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return err
		}
		if err := a.backFile(f); err != nil {
			f.Close()
			return err
		}
	}
	return nil
}

func (ix *index) pos(ord uint32) uint64 {
	return ix.posBase[ord/posBlock] + uint64(ix.posOff.at(ord))
}

// add numbers a record at pos whose stream's previous event is prev.
func (ix *index) add(pos uint64, prev uint32) (uint32, error) {
	ord := ix.n
	if ord >= maxOrds {
		return 0, errIndexFull
	}
	if ord%posBlock == 0 {
		ix.posBase = append(ix.posBase, pos)
	}
	off := pos - ix.posBase[ord/posBlock]
	if off > math.MaxUint32 {
		return 0, errors.New("a record lies more than 4 GiB after its index block's first record (a frame over the size limit)")
	}
	if err := ix.posOff.set(ord, uint32(off)); err != nil {
		return 0, err
	}
	if err := ix.prev.set(ord, prev); err != nil {
		return 0, err
	}
	ix.n++
	return ord, nil
}

// link records that ord (revision rev) is the new tail of the stream whose
// tail was old (noOrd: a new stream), keeping its skip list.
func (ix *index) link(old, ord uint32, rev int64) {
	var sk []uint32
	if old != noOrd {
		if s, ok := ix.skips[old]; ok {
			sk = s
			delete(ix.skips, old)
		}
	}
	if (rev+1)%skipEvery == 0 {
		sk = append(sk, ord)
	}
	if sk != nil {
		ix.skips[ord] = sk
	}
}

// ordOf is the ordinal of revision r (<= tailRev) of the stream whose tail
// is tail at revision tailRev.
func (ix *index) ordOf(tail uint32, tailRev, r int64) uint32 {
	o, at := tail, tailRev
	if sk := ix.skips[tail]; sk != nil {
		if b := r / skipEvery; b < int64(len(sk)) {
			o, at = sk[b], b*skipEvery+skipEvery-1
		}
	}
	for ; at > r; at-- {
		o = ix.prev.at(o)
	}
	return o
}

// span returns the locations of revisions lo..hi (lo <= hi <= tailRev) of
// the stream, ascending, or descending when back is set.
func (ix *index) span(tail uint32, tailRev, lo, hi int64, back bool) []loc {
	out := make([]loc, hi-lo+1)
	o := ix.ordOf(tail, tailRev, hi)
	for i := len(out) - 1; i >= 0; i-- {
		j := i
		if back {
			j = len(out) - 1 - i
		}
		out[j] = loc{ord: o, pos: ix.pos(o)}
		if i > 0 {
			o = ix.prev.at(o)
		}
	}
	return out
}

// memory is the memory the index holds mapped, in bytes (with onDisk, the
// per-record arrays' newest chunks only; fileBytes has the rest).
func (ix *index) memory() int {
	return ix.posOff.bytes() + ix.prev.bytes() + ix.table.bytes() + 8*cap(ix.posBase)
}

// evict drops the per-record arrays' older chunks from the resident set
// (onDisk only; u32s.evict).
func (ix *index) evict() {
	ix.posOff.evict()
	ix.prev.evict()
}

// fileBytes is the size of the index's scratch files (0 in memory).
func (ix *index) fileBytes() int { return ix.posOff.fileBytes() + ix.prev.fileBytes() }

func (ix *index) free() {
	ix.posOff.free()
	ix.prev.free()
	ix.table.free()
}

// loc is where a record is: its ordinal (the cache key) and position.
type loc struct {
	ord uint32
	pos uint64
}

// streamTable maps stream names to their tail ordinals: 256 open-addressing
// shards (linear probing, at most 80% full, each doubling on its own, so a
// resize moves 1/256 of the table) of 8-byte slots holding 32 bits of the
// name's hash (the tag) and the tail's ordinal + 1 (0: empty). Names are not
// kept: a slot whose tag matches is checked against the name of its tail
// event (the store's heads cache, else the log), so two names with the
// same hash bits are told apart, and the table costs ~13 bytes per stream
// at its mean load instead of the name's copy and a Go map's overhead.
// The shard and the slot come from different hash bits; the seed is
// random per process, since the table is rebuilt at every start.
type streamTable struct {
	seed   maphash.Seed
	shards [tableShards]tableShard
}

const (
	tableShards   = 256
	minShardSlots = 512 // one 4 KiB page
)

type tableShard struct {
	t    u64Table
	used int
}

// probe is a position in the table: where a name is, or would go.
type probe struct {
	shard *tableShard
	slot  int
	tag   uint32
}

func (t *streamTable) hash(name string) uint64 { return maphash.String(t.seed, name) }

// find looks name (hash h) up; is reports whether the stream whose tail is
// ord is named so. found is false when no slot matches; the probe then
// points at the empty slot where the name goes (none yet: slot -1).
func (t *streamTable) find(h uint64, is func(ord uint32) (bool, error)) (p probe, tail uint32, found bool, err error) {
	sh := &t.shards[(h>>32)%tableShards]
	p = probe{shard: sh, slot: -1, tag: uint32(h)}
	n := len(sh.t.slots)
	if n == 0 {
		return p, 0, false, nil
	}
	for i := int(p.tag) & (n - 1); ; i = (i + 1) & (n - 1) {
		s := sh.t.slots[i]
		if s == 0 {
			p.slot = i
			return p, 0, false, nil
		}
		if uint32(s>>32) != p.tag {
			continue
		}
		ord := uint32(s) - 1
		ok, err := is(ord)
		if err != nil {
			return p, 0, false, err
		}
		if ok {
			p.slot = i
			return p, ord, true, nil
		}
	}
}

// set makes ord the tail at p: an update when p was found, else an insert
// (which may grow the shard first).
func (t *streamTable) set(p probe, ord uint32, found bool) error {
	sh := p.shard
	if !found {
		if (sh.used+1)*5 > len(sh.t.slots)*4 {
			if err := sh.grow(); err != nil {
				return err
			}
			p.slot = sh.empty(p.tag)
		}
		sh.used++
	}
	sh.t.slots[p.slot] = uint64(p.tag)<<32 | uint64(ord+1)
	return nil
}

func (sh *tableShard) empty(tag uint32) int {
	n := len(sh.t.slots)
	i := int(tag) & (n - 1)
	for sh.t.slots[i] != 0 {
		i = (i + 1) & (n - 1)
	}
	return i
}

func (sh *tableShard) grow() error {
	old := sh.t
	nt, err := newU64Table(max(minShardSlots, 2*len(old.slots)))
	if err != nil {
		return err
	}
	sh.t = nt
	for _, s := range old.slots {
		if s != 0 {
			sh.t.slots[sh.empty(uint32(s>>32))] = s
		}
	}
	old.free()
	return nil
}

func (t *streamTable) bytes() int {
	n := 0
	for i := range t.shards {
		n += len(t.shards[i].t.raw)
	}
	return n
}

func (t *streamTable) free() {
	for i := range t.shards {
		t.shards[i].t.free()
		t.shards[i].used = 0
	}
}
