package kurrentdb

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// The index (index.go) and the in-memory log (memlog.go) live outside the
// Go heap, in mmap'd memory: the garbage collector neither scans nor counts
// it, so its heap target (twice the live heap by default) follows the small
// heap of requests and caches, not the size of the store. With a data
// directory the index's two per-record arrays (positions and stream chains)
// are shared mappings of unlinked scratch files there (index.go, onDisk),
// of which only the newest chunks stay resident. Memory taken this way is
// given back by free, which the store calls under its lock once it is
// closed; nothing may touch an array after that (the store drops its
// pointer to the index, so a stray use is a nil-pointer panic, not a read
// of unmapped memory).

// mapBytes maps n bytes (a multiple of the page size) of zeroed memory.
func mapBytes(n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: mapping %d bytes for the index: %w", n, err)
	}
	return b, nil
}

func unmapBytes(b []byte) {
	if len(b) > 0 {
		_ = syscall.Munmap(b)
	}
}

// chunkShift sets the entries per chunk of a u32s (256 Ki entries, 1 MiB):
// an array of the most records the index numbers (2^32 - 2) is 16 Ki
// mappings, so the two file-backed arrays stay within Linux's default
// vm.max_map_count (65,530) even where the kernel cannot merge them.
const (
	chunkShift = 18
	chunkLen   = 1 << chunkShift
	chunkMask  = chunkLen - 1
	chunkBytes = chunkLen * 4
)

// keptChunks is how many of a file-backed array's newest chunks stay
// resident when a chunk is added; older ones are dropped (evict).
const keptChunks = 2

// u32s is a growable array of uint32 in mmap'd chunks that never move, so
// growing it copies nothing. In anonymous memory by default; with a file
// (backFile), its chunks are shared mappings of that file, and adding a
// chunk drops every chunk but the keptChunks newest from the resident set
// (evict), so what stays in memory is bounded however long the array grows.
type u32s struct {
	chunks [][]uint32
	raw    [][]byte // the mappings, for free
	file   *os.File // nil: anonymous memory
}

func (a *u32s) at(i uint32) uint32 { return a.chunks[i>>chunkShift][i&chunkMask] }

// set stores v at i; i is at most one past the last chunk's end.
func (a *u32s) set(i, v uint32) error {
	c := int(i >> chunkShift)
	if c == len(a.chunks) {
		b, err := a.mapChunk(c)
		if err != nil {
			return err
		}
		a.raw = append(a.raw, b)
		a.chunks = append(a.chunks, unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), chunkLen))
		a.evict()
	}
	a.chunks[c][i&chunkMask] = v
	return nil
}

// backFile makes the array's chunks live in f (emptied first); the array
// must be empty. The array owns f from then on (free closes it).
func (a *u32s) backFile(f *os.File) error {
	if len(a.chunks) != 0 {
		return fmt.Errorf("backing a non-empty index array by %s", f.Name())
	}
	if err := f.Truncate(0); err != nil {
		return err // an *os.PathError: it names the file
	}
	a.file = f
	return nil
}

// mapChunk maps chunk c: zeroed anonymous memory, or the file grown by one
// chunk and that chunk of it mapped shared.
func (a *u32s) mapChunk(c int) ([]byte, error) {
	if a.file == nil {
		return mapBytes(chunkBytes)
	}
	off := int64(c) * chunkBytes
	if err := a.file.Truncate(off + chunkBytes); err != nil {
		return nil, fmt.Errorf("kurrentdb: growing the index file %s: %w", a.file.Name(), err)
	}
	b, err := syscall.Mmap(int(a.file.Fd()), off, chunkBytes, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("kurrentdb: mapping the index file %s: %w", a.file.Name(), err)
	}
	return b, nil
}

// evict drops a file-backed array's older chunks from the resident set.
// For a shared file mapping MADV_DONTNEED unmaps the pages without losing
// them (a dirty page is handed to the page cache, which writes it back);
// the next read of one faults it in from the page cache or the file, and
// it stays until the next chunk is added. Reads of old streams' chains and
// positions pay that fault; appends and the subscriptions' tails do not.
func (a *u32s) evict() {
	if a.file == nil {
		return
	}
	for _, b := range a.raw[:max(0, len(a.raw)-keptChunks)] {
		_ = syscall.Madvise(b, syscall.MADV_DONTNEED) // advice: a failure only leaves pages resident
	}
}

// bytes is the memory the array holds mapped: all of it in anonymous
// memory, the keptChunks newest chunks with a file (the rest is in the
// file; fileBytes).
func (a *u32s) bytes() int {
	if a.file != nil {
		return min(len(a.raw), keptChunks) * chunkBytes
	}
	return len(a.raw) * chunkBytes
}

// fileBytes is the size of the array's file (0 without one).
func (a *u32s) fileBytes() int {
	if a.file == nil {
		return 0
	}
	return len(a.raw) * chunkBytes
}

func (a *u32s) free() {
	for _, b := range a.raw {
		unmapBytes(b)
	}
	a.chunks, a.raw = nil, nil
	if a.file != nil {
		_ = a.file.Close()
		a.file = nil
	}
}

// u64Table is one mmap'd array of uint64 slots (a shard of streamTable).
type u64Table struct {
	slots []uint64
	raw   []byte
}

func newU64Table(n int) (u64Table, error) {
	b, err := mapBytes(n * 8)
	if err != nil {
		return u64Table{}, err
	}
	return u64Table{slots: unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n), raw: b}, nil
}

func (t *u64Table) free() {
	unmapBytes(t.raw)
	t.slots, t.raw = nil, nil
}
