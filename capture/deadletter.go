package capture

import (
	"context"
	"errors"
	"fmt"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// deadLetter writes one dead letter for ch (the *k-th of the change) or,
// under OnErrorStop, returns a *StopError.
func (p *Pipeline) deadLetter(ctx context.Context, ch *contract.Change, k *uint32, rule, field, reason string, cause error) error {
	pos := contract.Pos{CommitLSN: ch.Tx.CommitLSN, Ordinal: ch.Ordinal, Index: contract.DeadLetterIndex + *k}
	if p.cfg.OnError == OnErrorStop {
		return &StopError{Rule: rule, Table: tableOf(ch), Pos: pos, Cause: cause}
	}
	d := &contract.DeadLetter{Slot: p.cfg.Slot, Reason: reason, Rule: rule, Field: field, Error: cause.Error(), Change: contract.ChangeAsJSON(ch)}
	ev := store.Event{Stream: p.cfg.DeadLetterStream, Type: contract.DeadLetterType, Data: contract.EncodeDeadLetter(d),
		Source: contract.SourceOf(p.cfg.Slot, ch, rule, pos.Index), Extra: map[string]any{contract.MetaReason: reason}}
	err := p.app.Add(ctx, ev)
	// Over the append limit itself: keep the key values, then (a key over
	// the limit) only the position.
	var tooLarge *store.TooLargeError
	for _, cut := range []func(){d.Truncate, d.TruncateKey} {
		if !errors.As(err, &tooLarge) {
			break
		}
		cut()
		ev.Data = contract.EncodeDeadLetter(d)
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

// refusedIndex is the first Pos.Index of the dead letter of an event the
// store refused as too large after the appender queued it (store.Refused):
// the event at (commit LSN, ordinal, i) gets (commit LSN, ordinal,
// refusedIndex+i), after the dead letters the pipeline wrote for the change
// (contract.DeadLetterIndex+k), so it is stored once across crashes like them.
const refusedIndex = contract.DeadLetterIndex + 1<<30

// refusedDeadLetter is the appender's dead-letter builder
// (store.Appender.SetDeadLetter), called with the appender's lock held. An
// event the store refused becomes a too_large dead letter like one Add
// refuses, without the row (the pipeline no longer has the change; the
// event's source metadata gives its position, table, operation and rule),
// Truncated set. A dead letter the store refused is replaced, at its own
// position, by its truncated form.
func (p *Pipeline) refusedDeadLetter(r store.Refused) store.Event {
	src, _ := contract.ParseSource(r.Metadata) // written by the appender from a Source
	extra := map[string]any{contract.MetaReason: contract.ReasonTooLarge}
	if r.Stream == p.cfg.DeadLetterStream {
		d, err := contract.DecodeDeadLetter(r.Data)
		if err != nil {
			d = contract.DeadLetter{Slot: p.cfg.Slot, Reason: contract.ReasonTooLarge, Error: "the original dead letter could not be read back: " + err.Error()}
		}
		d.Truncate()
		src.Pos = r.Pos
		if d.Reason != "" {
			extra[contract.MetaReason] = d.Reason
		}
		return store.Event{Stream: r.Stream, Type: contract.DeadLetterType, Data: contract.EncodeDeadLetter(&d), Source: src, Extra: extra}
	}
	d := &contract.DeadLetter{
		Slot: p.cfg.Slot, Reason: contract.ReasonTooLarge, Rule: src.Rule, Error: r.Err.Error(), Truncated: true,
		Change: contract.ChangeJSON{
			Op: src.Op.String(), Database: src.Database, Schema: src.Schema, Table: src.Table,
			XID: src.XID, CommitLSN: r.Pos.CommitLSN.String(), CommitTime: src.CommitTime.UTC(),
			LSN: src.LSN.String(), Ordinal: r.Pos.Ordinal,
		},
	}
	src.Pos = contract.Pos{CommitLSN: r.Pos.CommitLSN, Ordinal: r.Pos.Ordinal, Index: refusedIndex + r.Pos.Index}
	p.deadLettered.Add(1)
	p.m.deadLetters.WithLabelValues(contract.ReasonTooLarge).Inc()
	p.cfg.Logger.Warn("event refused by the store as too large; dead-lettered", "rule", src.Rule, "stream", r.Stream, "position", src.Pos.String(),
		"deadletter_stream", p.cfg.DeadLetterStream, "error", r.Err)
	return store.Event{Stream: p.cfg.DeadLetterStream, Type: contract.DeadLetterType, Data: contract.EncodeDeadLetter(d), Source: src, Extra: extra}
}

func tableOf(ch *contract.Change) string {
	if ch.Schema == "" && ch.Table == "" {
		return "(message)"
	}
	return ch.QualifiedTable()
}
