package kurrentdb

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// TestIndexChainsAndSkips: streams of every length up to several skip
// blocks, interleaved at random: every revision of every stream maps to the
// ordinal it was added at, span lists them in both directions, and
// positions come back exactly.
func TestIndexChainsAndSkips(t *testing.T) {
	ix := newIndex()
	defer ix.free()
	type stream struct {
		tail uint32
		ords []uint32
	}
	streams := make([]*stream, 40)
	for i := range streams {
		streams[i] = &stream{tail: noOrd}
	}
	lengths := func(i int) int {
		return []int{1, 2, skipEvery - 1, skipEvery, skipEvery + 1, 3*skipEvery + 5, 10 * skipEvery}[i%7]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var pos uint64 = 16
	var positions []uint64
	for {
		var open []int
		for i, s := range streams {
			if len(s.ords) < lengths(i) {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			break
		}
		s := streams[open[rng.IntN(len(open))]]
		ord, err := ix.add(pos, s.tail)
		if err != nil {
			t.Fatal(err)
		}
		ix.link(s.tail, ord, int64(len(s.ords)))
		s.tail = ord
		s.ords = append(s.ords, ord)
		positions = append(positions, pos)
		pos += uint64(20 + rng.IntN(3000))
	}
	for o, p := range positions {
		if got := ix.pos(uint32(o)); got != p {
			t.Fatalf("pos(%d) = %d, want %d", o, got, p)
		}
	}
	for i, s := range streams {
		last := int64(len(s.ords) - 1)
		for r, want := range s.ords {
			if got := ix.ordOf(s.tail, last, int64(r)); got != want {
				t.Fatalf("stream %d (%d events): revision %d at ordinal %d, want %d", i, len(s.ords), r, got, want)
			}
		}
		lo, hi := last/3, last
		fw, bw := ix.span(s.tail, last, lo, hi, false), ix.span(s.tail, last, lo, hi, true)
		for k := range fw {
			if fw[k].ord != s.ords[lo+int64(k)] || bw[k].ord != s.ords[hi-int64(k)] || fw[k].pos != positions[fw[k].ord] {
				t.Fatalf("stream %d span %d..%d entry %d: %v / %v", i, lo, hi, k, fw[k], bw[k])
			}
		}
	}
}

// TestStreamTableCollisions: names whose hashes are identical (forced) or
// share a shard and tag are told apart by their tail's name, across shard
// growth; a lookup of an absent name finds nothing.
func TestStreamTableCollisions(t *testing.T) {
	var tbl streamTable
	defer tbl.free()
	names := map[uint32]string{} // tail ordinal -> name
	is := func(name string) func(uint32) (bool, error) {
		return func(ord uint32) (bool, error) { return names[ord] == name, nil }
	}
	// Every hash falls in shard 0 (so it grows several times), and every
	// third name gets the same hash as the one before it.
	hashOf := map[string]uint64{}
	for i := range 5000 {
		name := fmt.Sprintf("stream-%d", i)
		h := uint64(uint32(uint64(i)*0x9E3779B97F4A7C15 + 7))
		if i%3 == 2 {
			h = hashOf[fmt.Sprintf("stream-%d", i-1)]
		}
		hashOf[name] = h
		p, _, found, err := tbl.find(h, is(name))
		if err != nil || found {
			t.Fatalf("%s found before it was added (%v)", name, err)
		}
		ord := uint32(i)
		names[ord] = name
		if err := tbl.set(p, ord, false); err != nil {
			t.Fatal(err)
		}
	}
	for name, h := range hashOf {
		_, ord, found, _ := tbl.find(h, is(name))
		if !found || names[ord] != name {
			t.Fatalf("%s: found %v at %d (%s)", name, found, ord, names[ord])
		}
	}
	// Move one stream's tail: the update lands on its own slot.
	p, _, _, _ := tbl.find(hashOf["stream-2"], is("stream-2"))
	names[9999] = "stream-2"
	if err := tbl.set(p, 9999, true); err != nil {
		t.Fatal(err)
	}
	if _, ord, found, _ := tbl.find(hashOf["stream-2"], is("stream-2")); !found || ord != 9999 {
		t.Fatalf("after the update stream-2 is at %d (%v)", ord, found)
	}
	if _, ord, found, _ := tbl.find(hashOf["stream-1"], is("stream-1")); !found || ord != 1 {
		t.Fatalf("stream-1, same hash as stream-2, is at %d (%v)", ord, found)
	}
	if _, _, found, _ := tbl.find(hashOf["stream-1"], is("absent")); found {
		t.Fatal("an absent name with a taken hash was found")
	}
}

// TestRecordCacheIsBounded: the cache keeps at most about its bound; the
// newest records stay, the oldest go, and a hit on an old one keeps it.
func TestRecordCacheIsBounded(t *testing.T) {
	rec := func(int) *record { return &record{Stream: "s", Data: make([]byte, 1000)} }
	per := recordBytes(rec(0))
	c := newRecordCache(10 * per) // five per generation
	c.put(0, rec(0))
	for i := 1; i < 100; i++ {
		c.put(uint32(i), rec(i))
		if i == 7 && c.get(0) == nil { // still in the old generation: kept
			t.Fatal("record 0 was dropped while the old generation held it")
		}
	}
	held := 0
	for i := range 100 {
		if c.get(uint32(i)) != nil {
			held++
		}
	}
	if held > 10 || c.get(99) == nil || c.get(0) != nil {
		t.Fatalf("%d records held (bound 10), newest held %v, oldest dropped %v", held, c.get(99) != nil, c.get(0) == nil)
	}
}

// TestIDCacheModelsTheRealBound: the idempotency cache drops its oldest ids
// once the real server's 8 MiB accounting is exceeded, counting each entry
// as IndexWriter.cs does.
func TestIDCacheModelsTheRealBound(t *testing.T) {
	if got := idEntrySize("acct-1"); got != 28+40 { // 16+4+8, then (20 + 2*6 + 1) rounded up to 8
		t.Fatalf("entry size %d, want 68", got)
	}
	c := newIDCache(10 * idEntrySize("acct-1"))
	ids := make([][16]byte, 20)
	for i := range ids {
		ids[i][0] = byte(i + 1)
		c.put(ids[i], idEntry{stream: "acct-1", rev: int64(i)})
	}
	if _, ok := c.get(ids[0]); ok {
		t.Fatal("the oldest id survived past the bound")
	}
	if e, ok := c.get(ids[19]); !ok || e.rev != 19 {
		t.Fatal("the newest id was dropped")
	}
	if len(c.m) > 11 {
		t.Fatalf("%d ids held, want at most 11 (the bound is checked before each put)", len(c.m))
	}
}

// TestIndexOnDiskKeepsOnlyItsNewestChunksResident: with a data directory the
// per-record arrays live in unlinked scratch files; every value reads back
// exactly after its chunk was dropped from memory, and the dropped chunks
// hold no resident pages (read from /proc/self/smaps for their mappings)
// until read again.
func TestIndexOnDiskKeepsOnlyItsNewestChunksResident(t *testing.T) {
	dir := t.TempDir()
	ix := newIndex()
	defer ix.free()
	if err := ix.onDisk(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the data directory holds %d entries; want the scratch files unlinked at once", len(left))
	}
	const n = 4*chunkLen + 10 // five chunks per array
	prev := uint32(noOrd)
	for i := range uint32(n) {
		ord, err := ix.add(16+uint64(i)*100, prev)
		if err != nil {
			t.Fatal(err)
		}
		ix.link(prev, ord, int64(i))
		prev = ord
	}
	for _, a := range []*u32s{&ix.posOff, &ix.prev} {
		for c, b := range a.raw {
			rss := residentKiB(t, b)
			if old := c < len(a.raw)-keptChunks; old && rss != 0 {
				t.Errorf("chunk %d of %d: %d KiB resident; want 0 (dropped)", c, len(a.raw), rss)
			} else if !old && rss == 0 {
				t.Errorf("chunk %d of %d (kept): nothing resident", c, len(a.raw))
			}
		}
	}
	if got, want := ix.memory()-ix.table.bytes()-8*cap(ix.posBase), 2*keptChunks*chunkBytes; got != want {
		t.Errorf("memory() counts %d bytes of arrays; want %d (the kept chunks)", got, want)
	}
	if got, want := ix.fileBytes(), 2*5*chunkBytes; got != want {
		t.Errorf("fileBytes() = %d; want %d", got, want)
	}
	for _, o := range []uint32{0, 1, chunkLen - 1, chunkLen, 3*chunkLen + 7, n - 1} {
		if got, want := ix.pos(o), 16+uint64(o)*100; got != want {
			t.Errorf("pos(%d) = %d; want %d", o, got, want)
		}
		if got := ix.ordOf(n-1, n-1, int64(o)); got != o {
			t.Errorf("ordOf(revision %d) = %d; want %d", o, got, o)
		}
	}
	if residentKiB(t, ix.posOff.raw[0]) == 0 {
		t.Error("chunk 0 read back, but nothing of it is resident: the test does not see residency")
	}
	ix.evict() // what the writer does every indexEvictEvery
	if kib := residentKiB(t, ix.posOff.raw[0]); kib != 0 {
		t.Errorf("chunk 0 after evict: %d KiB resident; want 0", kib)
	}
	if got := ix.pos(0); got != 16 {
		t.Errorf("pos(0) after evict = %d; want 16", got)
	}
}

// residentKiB is the Rss of the mapping that starts at b, from
// /proc/self/smaps.
func residentKiB(t *testing.T, b []byte) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(&b[0])))
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = strings.HasPrefix(line, start)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			var kib int
			if _, err := fmt.Sscanf(strings.TrimPrefix(line, "Rss:"), "%d", &kib); err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			return kib
		}
	}
	t.Fatalf("no mapping at %s in /proc/self/smaps", start)
	return 0
}
