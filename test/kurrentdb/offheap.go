package kurrentdb

import (
	"fmt"
	"syscall"
	"unsafe"
)

// The index (index.go) and the in-memory log (memlog.go) live outside the
// Go heap, in anonymous mmap'd memory: the garbage collector neither scans
// nor counts it, so its heap target (twice the live heap by default) follows
// the small heap of requests and caches, not the size of the store. Memory
// taken from the heap this way is given back by free, which the store calls
// under its lock once it is closed; nothing may touch an array after that
// (the store drops its pointer to the index, so a stray use is a nil-pointer
// panic, not a read of unmapped memory).

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

// chunkShift sets the entries per chunk of a u32s (64 Ki entries, 256 KiB).
const (
	chunkShift = 16
	chunkLen   = 1 << chunkShift
	chunkMask  = chunkLen - 1
)

// u32s is a growable array of uint32 in mmap'd chunks that never move, so
// growing it copies nothing.
type u32s struct {
	chunks [][]uint32
	raw    [][]byte // the mappings, for free
}

func (a *u32s) at(i uint32) uint32 { return a.chunks[i>>chunkShift][i&chunkMask] }

// set stores v at i; i is at most one past the last chunk's end.
func (a *u32s) set(i, v uint32) error {
	c := int(i >> chunkShift)
	if c == len(a.chunks) {
		b, err := mapBytes(chunkLen * 4)
		if err != nil {
			return err
		}
		a.raw = append(a.raw, b)
		a.chunks = append(a.chunks, unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), chunkLen))
	}
	a.chunks[c][i&chunkMask] = v
	return nil
}

// bytes is the memory mapped for the array.
func (a *u32s) bytes() int { return len(a.raw) * chunkLen * 4 }

func (a *u32s) free() {
	for _, b := range a.raw {
		unmapBytes(b)
	}
	a.chunks, a.raw = nil, nil
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
