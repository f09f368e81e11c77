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

func tableOf(ch *contract.Change) string {
	if ch.Schema == "" && ch.Table == "" {
		return "(message)"
	}
	return ch.QualifiedTable()
}
