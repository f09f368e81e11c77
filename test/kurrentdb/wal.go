package kurrentdb

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// logFileName is the log inside Options.DataDir.
const logFileName = "kurrentdb.log"

// wal is the durable, append-only log file with group commit: appends
// enqueue their frame under the store lock (so frames reach the file in
// position order), one goroutine writes everything queued with one write and
// one fsync, then makes those records visible. While it syncs, new appends
// keep queueing; no lock is held across the fsync.
type wal struct {
	path   string
	f      *os.File
	offset int64 // file size = offset of the next frame

	mu      sync.Mutex
	pending []byte
	upTo    int // store.log length the pending frames reach
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	st      *store

	closeOnce sync.Once
	closeErr  error

	syncs      int         // fsyncs of appended frames; written by the writer goroutine only
	beforeSync func() bool // test hook: runs before each fsync; false simulates a failed sync
}

func newID() [16]byte {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// openWAL opens (or creates) the log in dir, replays it into st, cuts a torn
// or corrupt tail and starts the writer goroutine.
func openWAL(dir string, st *store) (*wal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &StorageError{Path: dir, Op: "creating data directory", Err: err}
	}
	path := filepath.Join(dir, logFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, &StorageError{Path: path, Op: "opening", Err: err}
	}
	// One server per data directory; the lock dies with the process (kill -9 included).
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, &StorageError{Path: path, Op: "locking (is another server using this data directory?)", Err: err}
	}
	w := &wal{path: path, f: f, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), st: st}
	if err := w.replay(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

func (w *wal) replay() error {
	data, err := io.ReadAll(w.f)
	if err != nil {
		return &StorageError{Path: w.path, Op: "reading", Err: err}
	}
	if len(data) < len(fileHeader) {
		// New file, or a crash while writing the header: start over.
		if err := w.truncate(0, len(data)); err != nil {
			return err
		}
		if _, err := w.f.WriteAt([]byte(fileHeader), 0); err != nil {
			return &StorageError{Path: w.path, Op: "writing header", Err: err}
		}
		if err := w.f.Sync(); err != nil {
			return &StorageError{Path: w.path, Op: "syncing", Err: err}
		}
		w.offset = int64(len(fileHeader))
		w.st.next = uint64(w.offset)
		return syncDir(filepath.Dir(w.path))
	}
	if string(data[:len(fileHeader)]) != fileHeader {
		return &LogFormatError{Path: w.path, Reason: fmt.Sprintf("header %q", data[:len(fileHeader)])}
	}
	off, frames := scanFrames(data, w.st)
	if off < len(data) {
		w.st.logger.Warn("kurrentdb: cut a torn or corrupt tail of the log",
			"path", w.path, "offset", off, "bytes_cut", len(data)-off, "frames_kept", frames)
		if err := w.truncate(off, len(data)); err != nil {
			return err
		}
	}
	w.offset = int64(off)
	w.st.next = uint64(off)
	w.st.markVisible(len(w.st.log))
	w.st.logger.Info("kurrentdb: log replayed", "path", w.path, "frames", frames, "events", len(w.st.log), "bytes", off)
	return nil
}

// scanFrames indexes every whole, checksummed frame of data into st and
// returns the offset where the valid log ends and the number of frames.
func scanFrames(data []byte, st *store) (int, int) {
	off, frames := len(fileHeader), 0
	for {
		if len(data)-off < frameHeaderSize {
			return off, frames
		}
		n := int(binary.LittleEndian.Uint32(data[off:]))
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if n == 0 || n > maxFrameSize || n > len(data)-off-frameHeaderSize {
			return off, frames
		}
		payload := data[off+frameHeaderSize : off+frameHeaderSize+n]
		if crc32.Checksum(payload, crcTable) != sum {
			return off, frames
		}
		recs, err := decodePayload(uint64(off), payload)
		if err != nil {
			return off, frames
		}
		for _, r := range recs {
			st.indexLocked(r)
		}
		frames++
		off += frameHeaderSize + n
	}
}

func (w *wal) truncate(off, size int) error {
	if off == size {
		return nil
	}
	if err := w.f.Truncate(int64(off)); err != nil {
		return &StorageError{Path: w.path, Op: "truncating torn tail", Err: err}
	}
	if err := w.f.Sync(); err != nil {
		return &StorageError{Path: w.path, Op: "syncing", Err: err}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return &StorageError{Path: dir, Op: "opening directory", Err: err}
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return &StorageError{Path: dir, Op: "syncing directory", Err: err}
	}
	return nil
}

var errTestSync = errors.New("sync failed (test hook)")

// enqueue is called with the store lock held, in position order.
func (w *wal) enqueue(frame []byte, upTo int) {
	w.mu.Lock()
	w.pending = append(w.pending, frame...)
	w.upTo = upTo
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *wal) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			w.flush() // whatever was reserved before Close
			return
		}
		if !w.flush() {
			return
		}
	}
}

// flush writes and syncs everything queued; false after a storage error.
func (w *wal) flush() bool {
	w.mu.Lock()
	buf, upTo := w.pending, w.upTo
	w.pending = nil
	w.mu.Unlock()
	if len(buf) == 0 {
		return true
	}
	if _, err := w.f.WriteAt(buf, w.offset); err != nil {
		w.st.fail(&StorageError{Path: w.path, Op: "writing", Err: err})
		return false
	}
	if w.beforeSync != nil && !w.beforeSync() {
		w.st.fail(&StorageError{Path: w.path, Op: "syncing", Err: errTestSync})
		return false
	}
	if err := w.f.Sync(); err != nil {
		w.st.fail(&StorageError{Path: w.path, Op: "syncing", Err: err})
		return false
	}
	w.syncs++
	w.offset += int64(len(buf))
	w.st.markVisible(upTo)
	return true
}

// close flushes what is queued, stops the writer and closes the file. It is
// idempotent.
func (w *wal) close() error {
	w.closeOnce.Do(func() {
		close(w.stop)
		<-w.done
		w.closeErr = w.f.Close()
	})
	return w.closeErr
}
