package contract

import (
	"encoding/json"
	"fmt"
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

// SnapshotState is saved initial-snapshot progress (event type
// SnapshotProgressType in the slot's SnapshotStream; the last one counts).
type SnapshotState struct {
	Slot    string   `json:"slot"`
	Point   string   `json:"point"` // the slot's consistent point, an LSN's text form
	Done    bool     `json:"done"`
	Table   int      `json:"table"`   // index in Tables of the table being read
	Tables  []string `json:"tables"`  // the tables to snapshot, in order
	LastKey []string `json:"lastKey"` // the key of the last row read of Table, as text
	Rows    uint64   `json:"rows"`
}

// EncodeSnapshotState is the event data of saved snapshot progress.
func EncodeSnapshotState(s SnapshotState) []byte {
	b, _ := json.Marshal(s)
	return b
}

// DecodeSnapshotState reads saved snapshot progress.
func DecodeSnapshotState(data []byte) (SnapshotState, LSN, error) {
	var s SnapshotState
	if err := json.Unmarshal(data, &s); err != nil {
		return s, 0, err
	}
	point, err := ParseLSN(s.Point)
	return s, point, err
}
