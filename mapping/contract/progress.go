package contract

import (
	"encoding/json"
	"fmt"
	"time"
)

// Progress is a progress marker (event type ProgressType, in the slot's
// ProgressStream): every event of every source transaction with a commit
// LSN up to DurableLSN is in the store. Capture writes it once that holds;
// the publisher completes buffered transactions with it.
type Progress struct {
	Slot       string
	DurableLSN LSN
}

type progressJSON struct {
	Slot       string `json:"slot"`
	DurableLSN string `json:"durableLsn"`
}

// EncodeProgress is a marker's event data: {"slot":"…","durableLsn":"X/Y"}.
func EncodeProgress(p Progress) []byte {
	b, _ := json.Marshal(progressJSON{Slot: p.Slot, DurableLSN: p.DurableLSN.String()})
	return b
}

// DecodeProgress reads a marker's event data.
func DecodeProgress(data []byte) (Progress, error) {
	var j progressJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return Progress{}, fmt.Errorf("progress marker: %w", err)
	}
	l, err := ParseLSN(j.DurableLSN)
	if err != nil {
		return Progress{}, fmt.Errorf("progress marker: durableLsn: %w", err)
	}
	return Progress{Slot: j.Slot, DurableLSN: l}, nil
}

// SnapshotState is a slot's saved snapshots (event type
// SnapshotProgressType in the slot's SnapshotStream; the last event counts):
// the initial snapshot and the requested ones, queued, running or ended,
// each with its progress.
type SnapshotState struct {
	Slot      string          `json:"slot"`
	Snapshots []SnapshotEntry `json:"snapshots"`
}

// SnapshotEntry is one snapshot's saved progress.
type SnapshotEntry struct {
	ID      string   `json:"id"`
	Initial bool     `json:"initial,omitempty"` // the initial snapshot (snapshot.mode initial or initial_only)
	Tables  []string `json:"tables"`            // "schema.table", read in this order
	Where   string   `json:"where,omitempty"`   // an SQL condition on the rows to read
	// State is queued, running, done, cancelled or failed.
	State string `json:"state"`
	// Table is the index in Tables of the table being read; LastKey the
	// text forms of the key columns of the last row of its last completed
	// chunk (null: the table has not started).
	Table   int      `json:"table"`
	LastKey []string `json:"lastKey"`
	// Rows counts the rows emitted by completed chunks; Estimated is the
	// tables' estimated row count when the snapshot started.
	Rows      uint64 `json:"rows"`
	Estimated uint64 `json:"estimated"`
	// Floor is an LSN's text form below every position a chunk not yet
	// completed can have been emitted at: the commit LSN of the last
	// completed chunk's high watermark (or where the snapshot started).
	Floor         string     `json:"floor"`
	RowsPerSecond float64    `json:"rowsPerSecond"`
	RequestedAt   *time.Time `json:"requestedAt,omitempty"`
	StartedAt     *time.Time `json:"startedAt,omitempty"`
	UpdatedAt     *time.Time `json:"updatedAt,omitempty"`
	Error         string     `json:"error,omitempty"` // why it failed
}

// legacySnapshotState is the format before chunked snapshots: one initial
// snapshot read at the slot's consistent point.
type legacySnapshotState struct {
	Slot    string   `json:"slot"`
	Point   string   `json:"point"`
	Done    bool     `json:"done"`
	Table   int      `json:"table"`
	Tables  []string `json:"tables"`
	LastKey []string `json:"lastKey"`
	Rows    uint64   `json:"rows"`
}

// EncodeSnapshotState is the event data of saved snapshots.
func EncodeSnapshotState(s SnapshotState) []byte {
	b, _ := json.Marshal(s)
	return b
}

// DecodeSnapshotState reads saved snapshots. The format written before
// chunked snapshots ({"point", "done", ...}) reads as its initial snapshot,
// with id "initial-<point>" and the point as its floor.
func DecodeSnapshotState(data []byte) (SnapshotState, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return SnapshotState{}, err
	}
	if _, v2 := probe["snapshots"]; v2 {
		var s SnapshotState
		if err := json.Unmarshal(data, &s); err != nil {
			return SnapshotState{}, err
		}
		for i, e := range s.Snapshots {
			if _, err := ParseLSN(e.Floor); err != nil {
				return SnapshotState{}, fmt.Errorf("snapshot %s: floor: %w", e.ID, err)
			}
			if e.ID == "" || len(e.Tables) == 0 {
				return SnapshotState{}, fmt.Errorf("snapshot %d: no id or no tables", i)
			}
		}
		return s, nil
	}
	var old legacySnapshotState
	if err := json.Unmarshal(data, &old); err != nil {
		return SnapshotState{}, err
	}
	if _, err := ParseLSN(old.Point); err != nil {
		return SnapshotState{}, fmt.Errorf("point: %w", err)
	}
	e := SnapshotEntry{ID: "initial-" + old.Point, Initial: true, Tables: old.Tables, State: "running",
		Table: old.Table, LastKey: old.LastKey, Rows: old.Rows, Floor: old.Point}
	if old.Done {
		e.State = "done"
	}
	return SnapshotState{Slot: old.Slot, Snapshots: []SnapshotEntry{e}}, nil
}
