package contract

import (
	"encoding/json"
	"fmt"
	"time"
)

// Dead-letter reasons.
const (
	ReasonRule     = "rule"      // a capture rule failed on the change
	ReasonTooLarge = "too_large" // an event of the change is over the store's append limit
)

// DeadLetter is the data of a dead-letter event (type DeadLetterType, in
// the dead-letter stream, at the change's position with index
// DeadLetterIndex+k).
type DeadLetter struct {
	Slot   string `json:"slot"`
	Reason string `json:"reason"`          // ReasonRule or ReasonTooLarge
	Rule   string `json:"rule"`            // the rule that failed (or produced the oversized event)
	Field  string `json:"field,omitempty"` // the rule field that failed, for ReasonRule
	Error  string `json:"error"`
	// Change is the raw change; nil values are JSON null, unchanged TOAST
	// values {"$unchanged":true}. When the dead letter itself would exceed
	// the append limit, New and Old keep only the key columns (Change.Key;
	// none when the key alone is too large) and Truncated is set.
	Change    ChangeJSON `json:"change"`
	Truncated bool       `json:"truncated,omitempty"`
}

// ChangeJSON is the JSON form of a Change in dead letters.
type ChangeJSON struct {
	Op         string         `json:"op"`
	Database   string         `json:"database"`
	Schema     string         `json:"schema,omitempty"`
	Table      string         `json:"table,omitempty"`
	Key        []string       `json:"key,omitempty"`
	New        map[string]any `json:"new,omitempty"`
	Old        map[string]any `json:"old,omitempty"`
	Message    *MessageJSON   `json:"message,omitempty"`
	XID        uint32         `json:"xid"`
	CommitLSN  string         `json:"commitLsn"`
	CommitTime time.Time      `json:"commitTime"`
	Origin     string         `json:"origin,omitempty"`
	LSN        string         `json:"lsn"`
	Ordinal    uint64         `json:"ordinal"`
}

// MessageJSON is a logical decoding message in a dead letter.
type MessageJSON struct {
	Prefix        string `json:"prefix"`
	Content       []byte `json:"content"` // base64
	Transactional bool   `json:"transactional"`
}

// ChangeAsJSON is ch's dead-letter form.
func ChangeAsJSON(ch *Change) ChangeJSON {
	c := ChangeJSON{
		Op: ch.Op.String(), Database: ch.Database, Schema: ch.Schema, Table: ch.Table, Key: ch.Key,
		New: ch.New, Old: ch.Old, XID: ch.Tx.XID, CommitLSN: ch.Tx.CommitLSN.String(),
		CommitTime: ch.Tx.CommitTime.UTC(), Origin: ch.Tx.Origin, LSN: ch.LSN.String(), Ordinal: ch.Ordinal,
	}
	if ch.Message != nil {
		c.Message = &MessageJSON{Prefix: ch.Message.Prefix, Content: ch.Message.Content, Transactional: ch.Message.Transactional}
	}
	return c
}

// EncodeDeadLetter encodes d; a value JSON cannot hold (NaN, ...) is
// written as its text form rather than losing the dead letter.
func EncodeDeadLetter(d *DeadLetter) []byte {
	b, err := json.Marshal(d)
	if err == nil {
		return b
	}
	d.Change.New, d.Change.Old = safeRow(d.Change.New), safeRow(d.Change.Old)
	if b, err = json.Marshal(d); err == nil {
		return b
	}
	// Cannot happen with safe rows; keep the error visible anyway.
	d.Change.New, d.Change.Old, d.Truncated = nil, nil, true
	d.Error += fmt.Sprintf(" (row not encodable: %v)", err)
	b, _ = json.Marshal(d)
	return b
}

// Truncate drops the row values of d but its key columns' (Change.Key, in
// New and in Old), a message's content, and shortens its error, for a dead
// letter that is itself over the append limit: the position, the rule, the
// error and the key stay, so the row can be found in the database.
func (d *DeadLetter) Truncate() {
	d.Change.New, d.Change.Old = keyOnly(d.Change.New, d.Change.Key), keyOnly(d.Change.Old, d.Change.Key)
	d.Change.Message, d.Truncated = nil, true
	if len(d.Error) > 4096 {
		d.Error = d.Error[:4096] + "..."
	}
}

// TruncateKey drops the key values too (after Truncate), for a dead letter
// whose key alone is over the append limit: the position stays.
func (d *DeadLetter) TruncateKey() {
	d.Truncate()
	d.Change.New, d.Change.Old = nil, nil
}

// keyOnly is row's key columns (nil when it has none of them).
func keyOnly(row map[string]any, key []string) map[string]any {
	var out map[string]any
	for _, k := range key {
		if v, ok := row[k]; ok {
			if out == nil {
				out = make(map[string]any, len(key))
			}
			out[k] = v
		}
	}
	return out
}

// DecodeDeadLetter reads a dead letter's event data.
func DecodeDeadLetter(data []byte) (DeadLetter, error) {
	var d DeadLetter
	err := json.Unmarshal(data, &d)
	return d, err
}

func safeRow(row map[string]any) map[string]any {
	if row == nil {
		return nil
	}
	out := make(map[string]any, len(row))
	for k, v := range row {
		if _, err := json.Marshal(v); err != nil {
			out[k] = fmt.Sprint(v)
		} else {
			out[k] = v
		}
	}
	return out
}
