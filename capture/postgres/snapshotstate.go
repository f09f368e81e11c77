package postgres

import (
	"context"
	"sync"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// SnapshotProgress is the persisted progress of an initial snapshot.
type SnapshotProgress struct {
	Slot  string       // the slot the snapshot belongs to
	Point contract.LSN // the slot's consistent point: the snapshot's position
	// Done is true once every table was read and acknowledged.
	Done bool
	// Table is the index in Tables of the table being read; Tables[:Table]
	// are complete.
	Table  int
	Tables []string
	// LastKey is the text form of the primary-key columns of the last row
	// of the last acknowledged chunk of Tables[Table]; nil when the table
	// has not started.
	LastKey []string
	// Rows is the number of rows acknowledged so far (all tables): the next
	// row's Ordinal.
	Rows uint64
}

// SnapshotState loads and saves snapshot progress. Capture saves after every
// chunk the downstream has acknowledged. Implementations must be safe for use
// from the capture goroutine while other goroutines use theirs.
type SnapshotState interface {
	// Load returns the saved progress for the slot, or ok=false if none.
	Load(ctx context.Context, slot string) (p SnapshotProgress, ok bool, err error)
	// Save replaces the progress for p.Slot.
	Save(ctx context.Context, p SnapshotProgress) error
}

// MemorySnapshotState is a SnapshotState in memory: it survives reconnects
// of one Source (and can be shared by Sources in one process), not a process
// restart.
type MemorySnapshotState struct {
	mu sync.Mutex
	m  map[string]SnapshotProgress
}

// NewMemorySnapshotState returns an empty MemorySnapshotState.
func NewMemorySnapshotState() *MemorySnapshotState {
	return &MemorySnapshotState{m: map[string]SnapshotProgress{}}
}

// Load implements SnapshotState.
func (s *MemorySnapshotState) Load(_ context.Context, slot string) (SnapshotProgress, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[slot]
	p.Tables = append([]string(nil), p.Tables...)
	p.LastKey = append([]string(nil), p.LastKey...)
	return p, ok, nil
}

// Save implements SnapshotState.
func (s *MemorySnapshotState) Save(_ context.Context, p SnapshotProgress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Tables = append([]string(nil), p.Tables...)
	p.LastKey = append([]string(nil), p.LastKey...)
	s.m[p.Slot] = p
	return nil
}
