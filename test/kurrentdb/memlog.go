package kurrentdb

import (
	"io"
	"sync"
)

// memLog is the log of the in-memory mode: the bytes the file would hold
// (header, then frames), in mmap'd chunks outside the Go heap, so positions
// are the same as with a data directory and records are read back through
// the same path. Appends come under the store lock, reads without it; the
// mutex orders them with free, after which reads fail with ErrClosed.
type memLog struct {
	mu     sync.RWMutex
	chunks [][]byte
	size   int64
	closed bool
}

const memChunk = 4 << 20

func (m *memLog) append(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for len(b) > 0 {
		c, off := int(m.size/memChunk), int(m.size%memChunk)
		if c == len(m.chunks) {
			chunk, err := mapBytes(memChunk)
			if err != nil {
				return err
			}
			m.chunks = append(m.chunks, chunk)
		}
		n := copy(m.chunks[c][off:], b)
		b = b[n:]
		m.size += int64(n)
	}
	return nil
}

// ReadAt reads like os.File.ReadAt: fewer bytes than asked only at the end
// of the log, with io.EOF.
func (m *memLog) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, ErrClosed
	}
	n := 0
	for n < len(p) && off < m.size {
		c, o := int(off/memChunk), int(off%memChunk)
		k := copy(p[n:], m.chunks[c][o:min(memChunk, o+int(m.size-off))])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memLog) bytes() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.chunks) * memChunk
}

func (m *memLog) free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, c := range m.chunks {
		unmapBytes(c)
	}
	m.chunks = nil
}
