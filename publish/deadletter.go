package publish

import (
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

func (g *engine) dead(dst []output, ev *store.Recorded, rule string, cause error) []output {
	return g.deadTx(dst, []*store.Recorded{ev}, rule, cause)
}

// deadTx adds the dead letter for src (one event, or a transaction's
// events) that rule could not promote (kafka.DeadLetterRecord).
func (g *engine) deadTx(dst []output, src []*store.Recorded, rule string, cause error) []output {
	evs := make([]kafka.DeadEvent, len(src))
	for i, ev := range src {
		evs[i] = kafka.NewDeadEvent(ev.ID.String(), ev.Stream, ev.Revision, ev.Pos.Commit, ev.Type, ev.Data, ev.Metadata)
	}
	rec := kafka.DeadLetterRecord(g.dlTopic, g.maxBytes, rule, cause, evs)
	first := src[0]
	d := &DeadLetterError{Stream: first.Stream, EventID: first.ID.String(), Rule: rule, Position: first.Pos.Commit, Cause: cause}
	return append(dst, output{rec: rec, dead: d})
}
