package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// snapshotter runs a Source's snapshots (see the package doc, Snapshots):
// the persisted list, the requests and cancellations read from the stream,
// the chunk attempts the reader registers for the receive loop, and the
// outcome that ends a session (initial_only done, a failed initial
// snapshot).
type snapshotter struct {
	s *Source

	mu       sync.Mutex
	book     Snapshots
	loaded   bool
	attempts map[string]*attempt // registered by the reader, by nonce
	wake     chan struct{}       // capacity 1: a snapshot was queued or cancelled

	saveMu sync.Mutex // serialises saves, so the last save is the latest state

	initialRunning atomic.Bool
	end            atomic.Pointer[error] // the session must end with it
}

func newSnapshotter(s *Source) *snapshotter {
	return &snapshotter{s: s, attempts: map[string]*attempt{}, wake: make(chan struct{}, 1)}
}

// load reads the saved snapshots once per Source; later sessions use the
// copy in memory, which every save keeps equal to the saved one.
func (sn *snapshotter) load(ctx context.Context) (Snapshots, error) {
	sn.mu.Lock()
	loaded := sn.loaded
	sn.mu.Unlock()
	if !loaded {
		b, ok, err := sn.s.cfg.SnapshotState.Load(ctx, sn.s.cfg.Slot)
		if err != nil {
			return Snapshots{}, fmt.Errorf("loading the snapshot state of slot %q: %w", sn.s.cfg.Slot, err)
		}
		if !ok {
			b = Snapshots{Slot: sn.s.cfg.Slot}
		}
		sn.mu.Lock()
		sn.book, sn.loaded = b, true
		sn.mu.Unlock()
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	sn.refreshLocked()
	return sn.book.clone(), nil
}

// refreshLocked updates what Phase and the metrics read of the book.
func (sn *snapshotter) refreshLocked() {
	init := sn.book.Initial()
	sn.initialRunning.Store(init != nil && init.Active())
	n := 0
	for i := range sn.book.List {
		if sn.book.List[i].Active() {
			n++
		}
	}
	sn.s.m.snapshotsPending.Set(float64(n))
}

// save stores the current book.
func (sn *snapshotter) save(ctx context.Context) error {
	sn.saveMu.Lock()
	defer sn.saveMu.Unlock()
	sn.mu.Lock()
	b := sn.book.clone()
	sn.refreshLocked()
	sn.mu.Unlock()
	if err := sn.s.cfg.SnapshotState.Save(ctx, b); err != nil {
		return fmt.Errorf("saving the snapshot state of slot %q: %w", sn.s.cfg.Slot, err)
	}
	return nil
}

// update applies f to snapshot id and saves.
func (sn *snapshotter) update(ctx context.Context, id string, f func(*Snapshot)) error {
	sn.mu.Lock()
	if e := sn.book.Find(id); e != nil {
		f(e)
	}
	sn.mu.Unlock()
	return sn.save(ctx)
}

// start applies f to snapshot id and saves, unless it is no longer active
// (cancelled while the reader prepared it): errSnapshotCancelled then, and
// nothing is saved.
func (sn *snapshotter) start(ctx context.Context, id string, f func(*Snapshot)) error {
	sn.mu.Lock()
	e := sn.book.Find(id)
	if e == nil || !e.Active() {
		sn.mu.Unlock()
		return errSnapshotCancelled
	}
	f(e)
	sn.mu.Unlock()
	return sn.save(ctx)
}

// get returns a copy of snapshot id.
func (sn *snapshotter) get(id string) (Snapshot, bool) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	e := sn.book.Find(id)
	if e == nil {
		return Snapshot{}, false
	}
	c := *e
	c.Tables = append([]string(nil), e.Tables...)
	c.LastKey = append([]string(nil), e.LastKey...)
	return c, true
}

// next returns the id of the first active snapshot.
func (sn *snapshotter) next() (string, bool) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if e := sn.book.Next(); e != nil {
		return e.ID, true
	}
	return "", false
}

// startInitial queues the initial snapshot of the configured tables, at
// floor (the new slot's consistent point, or the position streaming
// resumes from), in front of every other, and saves.
func (sn *snapshotter) startInitial(ctx context.Context, floor contract.LSN) (string, error) {
	id := "initial-" + floor.String()
	sn.mu.Lock()
	var list []Snapshot
	for _, e := range sn.book.List {
		if e.Initial && e.Active() {
			e.Status, e.Error = SnapshotFailed, "replaced by "+id+": its slot was created again"
		}
		if e.ID != id {
			list = append(list, e)
		}
	}
	now := time.Now()
	sn.book.List = append([]Snapshot{{ID: id, Initial: true, Tables: sn.s.Tables(),
		Status: SnapshotQueued, Floor: floor, RequestedAt: now}}, list...)
	sn.mu.Unlock()
	return id, sn.save(ctx)
}

// request queues a snapshot requested by a message at lsn (read by the
// receive loop) and saves before the loop goes on, so the request is in
// the state before its position can be confirmed. A repeated id (the
// message delivered again after a restart) changes nothing.
func (sn *snapshotter) request(ctx context.Context, m snapshotMessage, lsn contract.LSN) error {
	sn.mu.Lock()
	if sn.book.Find(m.ID) != nil {
		sn.mu.Unlock()
		return nil
	}
	e := Snapshot{ID: m.ID, Tables: m.Tables, Where: m.Where, Status: SnapshotQueued, Floor: lsn, RequestedAt: time.Now()}
	if len(m.Tables) == 0 {
		e.Status, e.Error = SnapshotFailed, "the request names no table"
	}
	for _, t := range m.Tables {
		if !slices.Contains(sn.s.captured().tables, t) {
			e.Status = SnapshotFailed
			e.Error = fmt.Sprintf("%s is not captured (postgres.tables): add it to postgres.tables (and the publication) first", t)
			break
		}
	}
	sn.book.List = append(sn.book.List, e)
	sn.mu.Unlock()
	if e.Status == SnapshotFailed {
		sn.s.log.Error("capture: snapshot request refused", "snapshot", e.ID, "tables", e.Tables, "error", e.Error)
	} else {
		sn.s.log.Info("capture: snapshot requested", "snapshot", e.ID, "tables", e.Tables, "where", e.Where, "lsn", lsn.String())
	}
	if err := sn.save(ctx); err != nil {
		return err
	}
	sn.poke()
	return nil
}

// cancel marks snapshot id cancelled and saves; the reader stops after the
// chunk in progress.
func (sn *snapshotter) cancel(ctx context.Context, id string) error {
	sn.mu.Lock()
	e := sn.book.Find(id)
	if e == nil || !e.Active() {
		sn.mu.Unlock()
		sn.s.log.Warn("capture: cancelling a snapshot that is not queued or running; nothing to do", "snapshot", id)
		return nil
	}
	e.Status, e.UpdatedAt = SnapshotCancelled, time.Now()
	sn.mu.Unlock()
	sn.s.log.Info("capture: snapshot cancelled", "snapshot", id)
	if err := sn.save(ctx); err != nil {
		return err
	}
	sn.poke()
	return nil
}

func (sn *snapshotter) poke() {
	select {
	case sn.wake <- struct{}{}:
	default:
	}
}

// finish ends the session with err (initial_only done, a failed initial
// snapshot): the receive loop returns it.
func (sn *snapshotter) finish(err error) { sn.end.CompareAndSwap(nil, &err) }

// ended is the error the session must end with, nil while it goes on.
func (sn *snapshotter) ended() error {
	if p := sn.end.Load(); p != nil {
		return *p
	}
	return nil
}

// register makes an attempt known to the receive loop before its low
// watermark is emitted.
func (sn *snapshotter) register(a *attempt) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	sn.attempts[a.nonce] = a
}

func (sn *snapshotter) unregister(a *attempt) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	delete(sn.attempts, a.nonce)
}

// lookup finds a registered attempt (nil: one of an earlier session or
// process, whose watermarks are delivered again: ignored).
func (sn *snapshotter) lookup(nonce string) *attempt {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.attempts[nonce]
}

// attempt is one read of a chunk between a low and a high watermark.
type attempt struct {
	nonce   string
	snap    string // the snapshot's id
	tbl     *snapTable
	only    map[string]bool // a re-read: the match keys still to emit; nil: every row
	recheck contract.LSN

	// Set by the reader before it emits the high watermark (under
	// snapshotter.mu via setRead, read by the loop after the watermark).
	rows [][][]byte
	vis  *visibility

	result chan attemptResult // capacity 1: the loop's decision at the high watermark
}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// attemptResult is what the receive loop did at an attempt's high
// watermark.
type attemptResult struct {
	hw      contract.LSN // the high watermark's commit LSN
	emitted int
	// pending are the match keys of rows not emitted because a
	// transaction the read did not see changed them between the
	// watermarks: they are read again.
	pending map[string]bool
	// waitFor: the attempt is void (see window.decide).
	waitFor []uint64
	err     error
}

func (sn *snapshotter) setRead(a *attempt, rows [][][]byte, vis *visibility) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	a.rows, a.vis = rows, vis
}

func (sn *snapshotter) readOf(a *attempt) ([][][]byte, *visibility) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return a.rows, a.vis
}

// errSnapshotCancelled ends a snapshot's reading when it was cancelled.
var errSnapshotCancelled = errors.New("snapshot cancelled")
