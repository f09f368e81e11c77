package publish

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/publish/kafka/registry"
)

// txKey names a source transaction: its slot and commit LSN (the
// $correlationId capture writes).
type txKey struct {
	slot   string
	commit contract.LSN
}

// openTx is a source transaction whose events are buffered until a progress
// marker says it is complete.
type openTx struct {
	key        txKey
	commitTime time.Time // of its first event (the transaction's)
	first      uint64    // $all commit position of its first event (ordering)
	before     contract.StoreFrom
	events     []mapping.StoredEvent
	raw        []*store.Recorded
	pos        []contract.Pos // source position of events[i]
}

// sortBySource puts t's events in the source transaction's order: commit
// LSN, ordinal, rule index (contract.Pos), which $all order need not be
// (capture appends a transaction's streams concurrently). Stable, so
// events with equal positions (none, from capture) keep their $all order.
func (t *openTx) sortBySource() {
	idx := make([]int, len(t.events))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return t.pos[idx[a]].Less(t.pos[idx[b]]) })
	events := make([]mapping.StoredEvent, len(idx))
	raw := make([]*store.Recorded, len(idx))
	for i, j := range idx {
		events[i], raw[i] = t.events[j], t.raw[j]
	}
	t.events, t.raw = events, raw
}

// engine turns stored events, in $all order, into Kafka records. It is a
// deterministic function of the events it is given (no clock), shared by
// the Publisher and Replay. Not safe for concurrent use.
type engine struct {
	rules    *mapping.RuleSet
	only     string // when set, only this rule's outputs (Replay)
	topic    string // when set, overrides every integration topic (Replay)
	dlTopic  string
	maxBytes int
	tx       bool
	open     map[txKey]*openTx
	outs     []mapping.Integration
	// schemaIDs frames the values of rules whose schema is registered
	// (registry.AppendFrame); nil without a schema registry.
	schemaIDs registry.IDs
}

func newEngine(rules *mapping.RuleSet, dlTopic string, maxBytes int) *engine {
	return &engine{rules: rules, dlTopic: dlTopic, maxBytes: maxBytes, tx: rules.Interest().Transactional, open: map[txKey]*openTx{}}
}

// output is one record for Kafka; dead is set when it is a dead letter.
type output struct {
	rec  *kgo.Record
	dead *DeadLetterError
	rule string // the promotion rule of an integration record
}

// handle processes ev. prev is where a re-read must start to see ev again
// (the position of the event before it). emitEvent says whether per-event
// promotions of ev are wanted (false for events at or before the
// checkpoint's through position); emitTx likewise for transactions a
// progress marker completes.
func (g *engine) handle(ev *store.Recorded, prev contract.StoreFrom, emitEvent, emitTx bool, dst []output) ([]output, error) {
	if contract.IsProgressMarker(ev.Stream, ev.Type) {
		if !g.tx {
			return dst, nil
		}
		return g.marker(ev, emitTx, dst)
	}
	if contract.IsPublisherRecord(ev.Stream, ev.Type) {
		// A publisher's bookkeeping (published.go): never promoted, but
		// handled like any event (the checkpoint moves past it).
		return dst, nil
	}
	se, src, err := storedEvent(ev)
	if err != nil {
		if emitEvent {
			dst = g.dead(dst, ev, "", err)
		}
		return dst, nil
	}
	if g.tx {
		if src.Slot != "" {
			k := txKey{src.Slot, src.Pos.CommitLSN}
			t := g.open[k]
			if t == nil {
				t = &openTx{key: k, commitTime: commitTime(se, src), first: ev.Pos.Commit, before: prev}
				g.open[k] = t
			}
			t.events = append(t.events, *se)
			t.raw = append(t.raw, ev)
			t.pos = append(t.pos, src.Pos)
		}
	}
	if !emitEvent {
		return dst, nil
	}
	outs, perr := g.rules.Promote(se, g.outs[:0])
	g.outs = outs
	for i := range outs {
		in := &outs[i]
		if g.only != "" && in.Rule != g.only {
			continue
		}
		dst = g.emit(dst, in, ev.ID.String(), src.Slot, commitTime(se, src), []*store.Recorded{ev})
	}
	var evalErrs mapping.EvalErrors
	if errors.As(perr, &evalErrs) {
		for _, e := range evalErrs {
			if g.only != "" && e.Rule != g.only {
				continue
			}
			dst = g.dead(dst, ev, e.Rule, e)
		}
	} else if perr != nil {
		dst = g.dead(dst, ev, "", perr)
	}
	return dst, nil
}

func (g *engine) marker(ev *store.Recorded, emit bool, dst []output) ([]output, error) {
	m, err := contract.DecodeProgress(ev.Data)
	if err != nil {
		return dst, fmt.Errorf("event %s in stream %s: %w", ev.ID, ev.Stream, err)
	}
	var done []*openTx
	for k, t := range g.open {
		if k.slot == m.Slot && k.commit <= m.DurableLSN {
			done = append(done, t)
		}
	}
	// Complete transactions in the order of their first event: deterministic,
	// whatever the map order.
	sort.Slice(done, func(i, j int) bool { return done[i].first < done[j].first })
	for _, t := range done {
		delete(g.open, t.key)
		if !emit {
			continue
		}
		t.sortBySource()
		outs, perr := g.rules.PromoteTx(t.events, g.outs[:0])
		g.outs = outs
		for i := range outs {
			in := &outs[i]
			if g.only != "" && in.Rule != g.only {
				continue
			}
			dst = g.emit(dst, in, "tx/"+t.key.slot+"/"+t.key.commit.String(), t.key.slot, t.commitTime, t.raw)
		}
		var evalErrs mapping.EvalErrors
		if errors.As(perr, &evalErrs) {
			for _, e := range evalErrs {
				if g.only != "" && e.Rule != g.only {
					continue
				}
				dst = g.deadTx(dst, t.raw, e.Rule, e)
			}
		} else if perr != nil {
			dst = g.deadTx(dst, t.raw, "", perr)
		}
	}
	return dst, nil
}

func (g *engine) emit(dst []output, in *mapping.Integration, id, slot string, at time.Time, src []*store.Recorded) []output {
	if sid, ok := g.schemaIDs[in.Rule]; ok {
		in.Value = registry.AppendFrame(make([]byte, 0, 5+len(in.Value)), sid, in.Value)
	}
	rec := kafka.IntegrationRecord(in, id, slot, at, g.topic)
	if n := kafka.RecordSize(rec); n > g.maxBytes {
		return g.deadTx(dst, src, in.Rule, fmt.Errorf("%w: topic %s, %d bytes > %d", ErrRecordTooLarge, rec.Topic, n, g.maxBytes))
	}
	return append(dst, output{rec: rec, rule: in.Rule})
}

// resume is where to re-read from to rebuild every open transaction, or ok
// false when none is open.
func (g *engine) resume() (r contract.StoreFrom, ok bool) {
	var oldest *openTx
	for _, t := range g.open {
		if oldest == nil || t.first < oldest.first {
			oldest = t
		}
	}
	if oldest == nil {
		return r, false
	}
	return oldest.before, true
}

// storedEvent decodes ev for the promotion rules, and its source when it
// is Chronicler's (src.Slot is "" otherwise).
func storedEvent(ev *store.Recorded) (*mapping.StoredEvent, contract.Source, error) {
	se := &mapping.StoredEvent{ID: ev.ID.String(), Stream: ev.Stream, Revision: ev.Revision, Position: ev.Pos.Commit, Type: ev.Type, Created: ev.Created}
	var src contract.Source
	if len(ev.Data) > 0 {
		d, err := contract.DecodeJSON(ev.Data)
		if err != nil {
			return nil, src, fmt.Errorf("decoding data of event %s in stream %s: %w", ev.ID, ev.Stream, err)
		}
		se.Data = d
	}
	if len(ev.Metadata) > 0 {
		m, err := contract.DecodeJSON(ev.Metadata)
		if err != nil {
			return nil, src, fmt.Errorf("decoding metadata of event %s in stream %s: %w", ev.ID, ev.Stream, err)
		}
		se.Metadata, _ = m.(map[string]any)
		src, _ = contract.SourceFromMap(se.Metadata)
	}
	return se, src, nil
}

// commitTime is the source commit time from the metadata, else the stored
// time: never the wall clock, so replays agree.
func commitTime(se *mapping.StoredEvent, src contract.Source) time.Time {
	if !src.CommitTime.IsZero() {
		return src.CommitTime
	}
	return se.Created
}

// swapRules makes rs the engine's rule set. Open transactions stay buffered
// when rs has transaction rules too (they are promoted by rs when their
// marker comes) and are dropped when it has none.
func (g *engine) swapRules(rs *mapping.RuleSet) {
	g.rules = rs
	g.tx = rs.Interest().Transactional
	if !g.tx {
		clear(g.open)
	}
}
