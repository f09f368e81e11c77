package kurrentdb

import (
	"bufio"
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
	"time"
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
	spare   []byte // the buffer flush wrote last, reused for pending
	upTo    uint32 // records the pending frames reach
	end     uint64 // log offset after the pending frames
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
	if err := st.ix.onDisk(dir); err != nil {
		f.Close()
		return nil, &StorageError{Path: dir, Op: "creating the index files", Err: err}
	}
	w := &wal{path: path, f: f, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), st: st}
	st.lr = f
	if err := w.replay(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

func (w *wal) replay() error {
	fi, err := w.f.Stat()
	if err != nil {
		return &StorageError{Path: w.path, Op: "reading", Err: err}
	}
	size := fi.Size()
	header := make([]byte, len(fileHeader))
	if n, _ := w.f.ReadAt(header, 0); n < len(header) {
		// New file, or a crash while writing the header: start over.
		if err := w.truncate(0, int(size)); err != nil {
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
		w.st.visibleEnd = w.st.next
		return syncDir(filepath.Dir(w.path))
	}
	if string(header) != fileHeader {
		return &LogFormatError{Path: w.path, Reason: fmt.Sprintf("header %q", header)}
	}
	off, frames, err := w.scanFrames(size)
	if err != nil {
		return err
	}
	if off < size {
		w.st.logger.Warn("kurrentdb: cut a torn or corrupt tail of the log",
			"path", w.path, "offset", off, "bytes_cut", size-off, "frames_kept", frames)
		if err := w.truncate(int(off), int(size)); err != nil {
			return err
		}
	}
	w.offset = off
	w.st.next = uint64(off)
	w.st.visibleEnd = uint64(off)
	w.st.logger.Info("kurrentdb: log replayed", "path", w.path, "frames", frames, "events", w.st.ix.n, "bytes", off)
	return nil
}

// scanFrames reads the log from the start, indexes every whole, checksummed
// frame (all its events, or none) and returns the offset where the valid
// log ends and the number of frames. It reads the file sequentially and
// keeps one frame in memory at a time. Each frame's records become visible
// as they are indexed (nothing is served before Start returns).
func (w *wal) scanFrames(size int64) (int64, int, error) {
	st := w.st
	rd := bufio.NewReaderSize(io.NewSectionReader(w.f, int64(len(fileHeader)), size-int64(len(fileHeader))), 1<<20)
	off, frames := int64(len(fileHeader)), 0
	var hdr [frameHeaderSize]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(rd, hdr[:]); err != nil {
			return off, frames, nil
		}
		n := int64(binary.LittleEndian.Uint32(hdr[0:]))
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if n == 0 || n > maxFrameSize || n > size-off-frameHeaderSize {
			return off, frames, nil
		}
		if int64(cap(payload)) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(rd, payload); err != nil {
			return off, frames, nil
		}
		if crc32.Checksum(payload, crcTable) != sum {
			return off, frames, nil
		}
		// Check the whole frame before indexing any of it.
		for p := 0; p < len(payload); {
			_, k, err := scanEvent(payload[p:])
			if err != nil {
				return off, frames, nil
			}
			p += k
		}
		at := uint64(off) + frameHeaderSize
		for p := 0; p < len(payload); {
			v, k, _ := scanEvent(payload[p:])
			r := &record{Stream: string(v.stream), Revision: v.revision, Type: string(v.typ), Position: at + uint64(p)}
			if isMetaStream(r.Stream) && r.Type == metadataType {
				r.Data = v.data // parsed, not kept
			}
			if err := st.indexLocked(r); err != nil {
				return off, frames, &StorageError{Path: w.path, Op: "indexing", Err: err}
			}
			// Replayed records are durable: visible at once (nothing
			// waits yet, so no change channel to close), and read back
			// from the file by later lookups.
			st.visible = st.ix.n
			p += k
		}
		off += frameHeaderSize + n
		frames++
		st.watermark = st.ix.pos(st.ix.n - 1)
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

// enqueue is called with the store lock held, in position order: frame
// ends at log offset end and holds the records up to upTo.
func (w *wal) enqueue(frame []byte, upTo uint32, end uint64) {
	w.mu.Lock()
	w.pending = append(w.pending, frame...)
	w.upTo, w.end = upTo, end
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *wal) run() {
	defer close(w.done)
	evict := time.NewTicker(indexEvictEvery)
	defer evict.Stop()
	for {
		select {
		case <-w.kick:
		case <-evict.C:
			w.st.evictIndex()
			continue
		case <-w.stop:
			w.flush() // whatever was reserved before Close
			return
		}
		if !w.flush() {
			return
		}
	}
}

// indexEvictEvery is how often the writer drops the index's older chunks
// from the resident set (index.evict): appends drop them as the arrays
// grow, but reads fault old chunks back in (a catch-up read of $all walks
// every record's position), and without appends nothing else would drop
// them again.
const indexEvictEvery = time.Second

// flush writes and syncs everything queued; false after a storage error.
func (w *wal) flush() bool {
	w.mu.Lock()
	buf, upTo, end := w.pending, w.upTo, w.end
	w.pending, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	defer func() {
		if cap(buf) <= 16<<20 { // keep up to 16 MiB for the next flush
			w.mu.Lock()
			w.spare = buf
			w.mu.Unlock()
		}
	}()
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
	w.st.markVisible(upTo, end)
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
