package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/chronicler-dev/chronicler/capture/change"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
)

// DeadLetterType is the event type of dead letters.
const DeadLetterType = "ChroniclerDeadLetter"

const (
	reasonRule     = "rule"
	reasonTooLarge = "too_large"
)

// DeadLetter is the data of a dead-letter event.
type DeadLetter struct {
	Slot   string `json:"slot"`
	Reason string `json:"reason"`          // "rule" or "too_large"
	Rule   string `json:"rule"`            // the rule that failed (or produced the oversized event)
	Field  string `json:"field,omitempty"` // the rule field that failed, for "rule"
	Error  string `json:"error"`
	// Change is the raw change; nil values are JSON null, unchanged TOAST
	// values {"$unchanged":true}. When the dead letter itself would exceed
	// the append limit, New and Old are dropped and Truncated is set.
	Change    ChangeJSON `json:"change"`
	Truncated bool       `json:"truncated,omitempty"`
}

// ChangeJSON is the JSON form of a change.Change in dead letters.
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

func changeJSON(ch *change.Change) ChangeJSON {
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

// encodeDeadLetter encodes d; a value JSON cannot hold (NaN, ...) is
// written as its text form rather than losing the dead letter.
func encodeDeadLetter(d *DeadLetter) []byte {
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

// deadLetter writes one dead letter for ch (the *k-th of the change) or,
// under OnErrorStop, returns a *StopError.
func (p *Pipeline) deadLetter(ctx context.Context, ch *change.Change, k *uint32, rule, field, reason string, cause error) error {
	pos := store.Pos{CommitLSN: ch.Tx.CommitLSN, Ordinal: ch.Ordinal, Index: DeadLetterIndex + *k}
	if p.cfg.OnError == OnErrorStop {
		return &StopError{Rule: rule, Table: tableOf(ch), Pos: pos, Cause: cause}
	}
	d := &DeadLetter{Slot: p.cfg.Slot, Reason: reason, Rule: rule, Field: field, Error: cause.Error(), Change: changeJSON(ch)}
	meta := mapping.SourceMetadata(ch, &mapping.Event{Rule: rule, Index: int(pos.Index)})
	meta["reason"] = reason
	ev := store.Event{Stream: p.cfg.DeadLetterStream, Type: DeadLetterType, Data: encodeDeadLetter(d), Metadata: meta, Pos: pos}
	err := p.app.Add(ctx, ev)
	var tooLarge *store.TooLargeError
	if errors.As(err, &tooLarge) {
		d.truncate()
		ev.Data = encodeDeadLetter(d)
		err = p.app.Add(ctx, ev)
	}
	if err != nil {
		return fmt.Errorf("writing dead letter for rule %s at %s to %s: %w", rule, pos, p.cfg.DeadLetterStream, err)
	}
	*k++
	p.deadLettered.Add(1)
	p.m.deadLetters.WithLabelValues(reason).Inc()
	p.cfg.Logger.Warn("change dead-lettered", "rule", rule, "field", field, "table", tableOf(ch), "position", pos.String(), "stream", p.cfg.DeadLetterStream, "reason", reason, "error", cause)
	return nil
}

// truncate drops the row of a dead letter that is itself too large: the
// row is what is too large; the position, the rule and the error stay, and
// the row stays in the database.
func (d *DeadLetter) truncate() {
	d.Change.New, d.Change.Old, d.Change.Message, d.Truncated = nil, nil, nil, true
	if len(d.Error) > 4096 {
		d.Error = d.Error[:4096] + "..."
	}
}

// refusedIndex is the first rule index of the dead letter of an event the
// store refused as too large after the appender queued it (store.Refused):
// the event at (commit LSN, ordinal, i) gets (commit LSN, ordinal,
// refusedIndex+i), after the dead letters the pipeline wrote for the change
// (DeadLetterIndex+k), so it is stored once across crashes like them.
const refusedIndex = DeadLetterIndex + 1<<30

// refusedDeadLetter is the appender's dead-letter builder
// (store.Appender.SetDeadLetter), called with the appender's lock held. An
// event the store refused becomes a too_large dead letter like one Add
// refuses, without the row (the pipeline no longer has the change; the
// event's source metadata gives its position, table, operation and rule),
// Truncated set. A dead letter the store refused is replaced, at its own
// position, by its truncated form.
func (p *Pipeline) refusedDeadLetter(r store.Refused) store.Event {
	var meta map[string]any
	_ = json.Unmarshal(r.Metadata, &meta) // written by the appender: valid JSON
	if meta == nil {
		meta = map[string]any{}
	}
	if r.Stream == p.cfg.DeadLetterStream {
		var d DeadLetter
		if err := json.Unmarshal(r.Data, &d); err != nil {
			d = DeadLetter{Slot: p.cfg.Slot, Reason: reasonTooLarge, Error: "the original dead letter could not be read back: " + err.Error()}
		}
		d.truncate()
		return store.Event{Stream: r.Stream, Type: DeadLetterType, Data: encodeDeadLetter(&d), Metadata: meta, Pos: r.Pos}
	}
	str := func(k string) string { s, _ := meta[k].(string); return s }
	num := func(k string) float64 { n, _ := meta[k].(float64); return n }
	commitTime, _ := time.Parse(time.RFC3339Nano, str(mapping.MetaCommitTime))
	rule := str(mapping.MetaRule)
	d := &DeadLetter{
		Slot: p.cfg.Slot, Reason: reasonTooLarge, Rule: rule, Error: r.Err.Error(), Truncated: true,
		Change: ChangeJSON{
			Op: str(mapping.MetaOp), Database: str(mapping.MetaDatabase), Schema: str(mapping.MetaSchema), Table: str(mapping.MetaTable),
			XID: uint32(num(mapping.MetaXID)), CommitLSN: r.Pos.CommitLSN.String(), CommitTime: commitTime.UTC(),
			LSN: str(mapping.MetaLSN), Ordinal: r.Pos.Ordinal,
		},
	}
	pos := store.Pos{CommitLSN: r.Pos.CommitLSN, Ordinal: r.Pos.Ordinal, Index: refusedIndex + r.Pos.Index}
	dm := map[string]any{"reason": reasonTooLarge}
	for _, k := range []string{mapping.MetaDatabase, mapping.MetaSchema, mapping.MetaTable, mapping.MetaOp, mapping.MetaLSN,
		mapping.MetaXID, mapping.MetaCommitTime, mapping.MetaRule, mapping.MetaCorrelation} {
		if v, ok := meta[k]; ok {
			dm[k] = v
		}
	}
	p.deadLettered.Add(1)
	p.m.deadLetters.WithLabelValues(reasonTooLarge).Inc()
	p.cfg.Logger.Warn("event refused by the store as too large; dead-lettered", "rule", rule, "stream", r.Stream, "position", pos.String(),
		"deadletter_stream", p.cfg.DeadLetterStream, "error", r.Err)
	return store.Event{Stream: p.cfg.DeadLetterStream, Type: DeadLetterType, Data: encodeDeadLetter(d), Metadata: dm, Pos: pos}
}

func tableOf(ch *change.Change) string {
	if ch.Schema == "" && ch.Table == "" {
		return "(message)"
	}
	return ch.QualifiedTable()
}
