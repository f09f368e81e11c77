package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// SnapshotStatus is where a snapshot is in its life.
type SnapshotStatus string

// The snapshot statuses. Queued and running snapshots are read, one at a
// time, in the order they were requested.
const (
	SnapshotQueued    SnapshotStatus = "queued"
	SnapshotRunning   SnapshotStatus = "running"
	SnapshotDone      SnapshotStatus = "done"
	SnapshotCancelled SnapshotStatus = "cancelled"
	SnapshotFailed    SnapshotStatus = "failed"
)

// Snapshot is one snapshot's persisted progress: the initial snapshot or
// one requested with `chronicler snapshot` ([RequestSnapshot]).
type Snapshot struct {
	// ID names the snapshot in its events' metadata and ids
	// (contract.SnapshotRow): "initial-<consistent point>" for the initial
	// snapshot, the requester's id otherwise.
	ID      string
	Initial bool
	Tables  []string // "schema.table", read in this order
	Where   string   // an SQL condition on the rows to read ("" : all)
	Status  SnapshotStatus
	// Table is the index in Tables of the table being read; Tables[:Table]
	// are complete. LastKey is the text form of the key columns of the last
	// row of the last completed chunk of Tables[Table]; nil when the table
	// has not started.
	Table   int
	LastKey []string
	// Rows counts the rows emitted by completed chunks (all tables);
	// Estimated is the tables' estimated row count, read when the snapshot
	// started (0: not started).
	Rows, Estimated uint64
	// Floor is below every position at which a chunk not completed yet can
	// have been emitted: the commit LSN of the last completed chunk's high
	// watermark, or the position where the snapshot started. After a
	// restart, the first chunk's rows are looked for in their streams back
	// to it (contract.SnapshotRow.Recheck).
	Floor contract.LSN
	// RowsPerSecond is the read rate since the snapshot (or its resume)
	// started, as of UpdatedAt.
	RowsPerSecond                     float64
	RequestedAt, StartedAt, UpdatedAt time.Time
	Error                             string // why it failed
}

// Active reports whether the snapshot is still to be read (queued or running).
func (s *Snapshot) Active() bool { return s.Status == SnapshotQueued || s.Status == SnapshotRunning }

// Snapshots is a slot's persisted snapshots, in request order.
type Snapshots struct {
	Slot string
	List []Snapshot
}

// Initial returns the last initial snapshot, nil when there is none.
func (b *Snapshots) Initial() *Snapshot {
	for i := len(b.List) - 1; i >= 0; i-- {
		if b.List[i].Initial {
			return &b.List[i]
		}
	}
	return nil
}

// Find returns the snapshot with id, nil when there is none.
func (b *Snapshots) Find(id string) *Snapshot {
	for i := range b.List {
		if b.List[i].ID == id {
			return &b.List[i]
		}
	}
	return nil
}

// Next returns the first active snapshot, nil when none is.
func (b *Snapshots) Next() *Snapshot {
	for i := range b.List {
		if b.List[i].Active() {
			return &b.List[i]
		}
	}
	return nil
}

// keptEnded is how many ended snapshots (done, cancelled, failed) a save
// keeps besides the active ones and the last initial one.
const keptEnded = 20

// clone is a deep copy, trimmed to the active snapshots, the last initial
// one and the last keptEnded ended ones.
func (b Snapshots) clone() Snapshots {
	out := Snapshots{Slot: b.Slot}
	init := b.Initial()
	ended := 0
	for i := len(b.List) - 1; i >= 0; i-- {
		if !b.List[i].Active() && &b.List[i] != init {
			ended++
		}
		if b.List[i].Active() || &b.List[i] == init || ended <= keptEnded {
			e := b.List[i]
			e.Tables = append([]string(nil), e.Tables...)
			e.LastKey = append([]string(nil), e.LastKey...)
			out.List = append(out.List, e)
		}
	}
	for i, j := 0, len(out.List)-1; i < j; i, j = i+1, j-1 {
		out.List[i], out.List[j] = out.List[j], out.List[i]
	}
	return out
}

// Contract is b in the stored form (contract.SnapshotState).
func (b Snapshots) Contract() contract.SnapshotState {
	out := contract.SnapshotState{Slot: b.Slot, Snapshots: make([]contract.SnapshotEntry, 0, len(b.List))}
	tp := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		u := t.UTC()
		return &u
	}
	for _, e := range b.List {
		out.Snapshots = append(out.Snapshots, contract.SnapshotEntry{
			ID: e.ID, Initial: e.Initial, Tables: e.Tables, Where: e.Where, State: string(e.Status),
			Table: e.Table, LastKey: e.LastKey, Rows: e.Rows, Estimated: e.Estimated, Floor: e.Floor.String(),
			RowsPerSecond: e.RowsPerSecond, RequestedAt: tp(e.RequestedAt), StartedAt: tp(e.StartedAt), UpdatedAt: tp(e.UpdatedAt),
			Error: e.Error,
		})
	}
	return out
}

// SnapshotsFromContract reads the stored form back.
func SnapshotsFromContract(c contract.SnapshotState) (Snapshots, error) {
	out := Snapshots{Slot: c.Slot}
	tv := func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	}
	for _, e := range c.Snapshots {
		floor, err := contract.ParseLSN(e.Floor)
		if err != nil {
			return Snapshots{}, fmt.Errorf("snapshot %s: %w", e.ID, err)
		}
		st := SnapshotStatus(e.State)
		switch st {
		case SnapshotQueued, SnapshotRunning, SnapshotDone, SnapshotCancelled, SnapshotFailed:
		default:
			return Snapshots{}, fmt.Errorf("snapshot %s: state %q is not one of queued, running, done, cancelled, failed", e.ID, e.State)
		}
		out.List = append(out.List, Snapshot{
			ID: e.ID, Initial: e.Initial, Tables: e.Tables, Where: e.Where, Status: st, Table: e.Table, LastKey: e.LastKey,
			Rows: e.Rows, Estimated: e.Estimated, Floor: floor, RowsPerSecond: e.RowsPerSecond,
			RequestedAt: tv(e.RequestedAt), StartedAt: tv(e.StartedAt), UpdatedAt: tv(e.UpdatedAt), Error: e.Error,
		})
	}
	return out, nil
}

// SnapshotState loads and saves a slot's snapshots. Capture saves when a
// snapshot is requested, cancelled, started, after every completed chunk
// (acknowledged by the downstream) and at its end. Implementations must be
// safe for concurrent use; capture serialises its own saves.
type SnapshotState interface {
	// Load returns the saved snapshots of the slot, or ok=false if none.
	Load(ctx context.Context, slot string) (b Snapshots, ok bool, err error)
	// Save replaces the saved snapshots of b.Slot.
	Save(ctx context.Context, b Snapshots) error
}

// MemorySnapshotState is a SnapshotState in memory: it survives reconnects
// of one Source (and can be shared by Sources in one process), not a process
// restart.
type MemorySnapshotState struct {
	mu sync.Mutex
	m  map[string]Snapshots
}

// NewMemorySnapshotState returns an empty MemorySnapshotState.
func NewMemorySnapshotState() *MemorySnapshotState {
	return &MemorySnapshotState{m: map[string]Snapshots{}}
}

// Load implements SnapshotState.
func (s *MemorySnapshotState) Load(_ context.Context, slot string) (Snapshots, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[slot]
	return b.clone(), ok, nil
}

// Save implements SnapshotState.
func (s *MemorySnapshotState) Save(_ context.Context, b Snapshots) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[b.Slot] = b.clone()
	return nil
}
