package store

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf16"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// The store's own size limits: KurrentDB refuses an append over its maximum
// append size (1 MiB by default) and, from 24.10.4, an event over its
// maximum append event size (unlimited by default, set by the operator).
// Both count an event as data + custom metadata + 2 x the length of its
// type in UTF-16 code units. The appender does not know them until the
// store refuses something: then it learns the limit from the answer, refuses
// later events over it in Add (*TooLargeError, which the caller dead-letters
// in order like any too-large event), and resolves what was already queued
// or in flight here:
//
//   - a refused append of one event: that event is refused. With a
//     dead-letter builder (SetDeadLetter) its dead letter is queued in its
//     place, in the same transaction (so the transaction is durable only
//     once the dead letter is stored), for the dead-letter stream at the
//     position the builder gives, which must follow the event's. A refused
//     dead letter is replaced by the builder's answer at its own position
//     (its shortened form); if that is refused too, or there is no builder,
//     the refusal is fatal. Never retried as it was.
//   - a refused append of several events: they are queued again, each to go
//     in an append of its own, so the one(s) over the limit are found
//     whatever the limit was.
//
// Dead letters must reach their stream in position order, or a crash
// replay would drop one as already stored. A refusal arrives after the
// caller went on adding, so the dead-letter stream is held back: its next
// event is appended only when no other event of a transaction at or before
// its commit LSN is still waiting for the store (heldLocked). A refused
// event's dead letter is then inserted in order before any later one.

// Refused is an event the store refused as too large after it was queued,
// given to the dead-letter builder.
type Refused struct {
	Stream   string
	Type     string
	Pos      contract.Pos
	Metadata []byte // the custom metadata as sent (JSON)
	Data     []byte
	Err      *TooLargeError
}

// SetDeadLetter makes the appender dead-letter events the store refuses as
// too large: build returns the dead letter of a refused event, for stream,
// at a position after the event's (of a refused dead letter: its shortened
// form at the same position). build is called with the appender's lock held:
// it must not call the appender. Without it a refusal stops the appender.
// Call it before Run.
func (a *Appender) SetDeadLetter(stream string, build func(Refused) Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dlStream, a.dlBuild = stream, build
}

// storeSize is an event's size as KurrentDB counts it against its limits
// (Event.SizeOnDisk, 24.10.4+).
func storeSize(typ string, data, meta []byte) int {
	n := 0
	for _, r := range typ {
		n += utf16.RuneLen(r)
	}
	return len(data) + len(meta) + 2*n
}

// storeLimits are the limits learned from the store's refusals; 0: not known.
type storeLimits struct {
	append, event atomic.Int64
}

// refusal is a too-large answer: which limit, and its value (0: not given).
type refusal struct {
	event bool // the maximum append event size, else the maximum append size
	limit int
}

func (r refusal) what() string {
	if r.event {
		return "maximum append event size"
	}
	return "maximum append size"
}

// The texts of KurrentDB's Append answers (RpcExceptions.cs): the official
// client gives the status only, not the trailers that carry the limit.
var (
	appendSizeText = regexp.MustCompile(`^Maximum Append Size of (\d+) Exceeded\.$`)
	eventSizeText  = regexp.MustCompile(`^Event with Id: .*, Size: \d+, exceeds Maximum Append Event Size of (\d+)\.$`)
)

// refusalOf reads a too-large answer from either append path.
func refusalOf(err error) (refusal, bool) {
	var be *batchError
	if errors.As(err, &be) {
		return be.refusal, be.kind == kindTooLarge
	}
	var e *esdb.Error
	if !errors.As(err, &e) || e.Err() == nil {
		return refusal{}, false
	}
	st, ok := status.FromError(e.Err())
	if !ok || st.Code() != codes.InvalidArgument {
		return refusal{}, false
	}
	if m := appendSizeText.FindStringSubmatch(st.Message()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return refusal{limit: n}, true
	}
	if m := eventSizeText.FindStringSubmatch(st.Message()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return refusal{event: true, limit: n}, true
	}
	return refusal{}, false
}

// maxEventSizeDetail reads the BatchAppend detail
// event_store.client.MaximumAppendEventSizeExceeded (24.10.4+; not in the
// Go client's protos): maxAppendEventSize is field 3 (its fields are
// varints and strings, which walk reads; 0 when it is not there).
func maxEventSizeDetail(d *anypb.Any) (refusal, bool) {
	if !strings.HasSuffix(d.GetTypeUrl(), "/event_store.client.MaximumAppendEventSizeExceeded") {
		return refusal{}, false
	}
	r := refusal{event: true}
	walk(d.GetValue(), func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) bool {
		if num == 3 && typ == protowire.VarintType {
			r.limit = int(v)
		}
		return true
	})
	return r, true
}

// learn records the limit of a refusal (the lowest seen wins).
func (a *Appender) learn(r refusal) {
	if r.limit <= 0 {
		return
	}
	l := &a.limits.append
	if r.event {
		l = &a.limits.event
	}
	for {
		cur := l.Load()
		if cur != 0 && cur <= int64(r.limit) {
			return
		}
		if l.CompareAndSwap(cur, int64(r.limit)) {
			a.cfg.Logger.Warn("the store refused an append as too large; events over its limit are refused from now on", "limit", r.what(), "bytes", r.limit)
			return
		}
	}
}

// checkStoreLimits refuses an event over a learned limit.
func (a *Appender) checkStoreLimits(stream string, size int) error {
	for _, r := range []refusal{{event: true, limit: int(a.limits.event.Load())}, {limit: int(a.limits.append.Load())}} {
		if r.limit > 0 && size > r.limit {
			return &TooLargeError{Stream: stream, Size: size, Limit: r.limit, Store: r.what()}
		}
	}
	return nil
}

// refused resolves the in-flight append of todo (the suffix of batch not
// found stored) that the store refused as too large; see the top of the
// file. rev/tail/warm are what the append expected.
func (a *Appender) refused(s *streamQ, batch, todo []*item, rev uint64, tail contract.Pos, warm bool, r refusal) {
	a.mu.Lock()
	a.endLocked(s, rev, tail, warm)
	for _, it := range batch[:len(batch)-len(todo)] { // found stored before the refusal
		a.completeLocked(it)
		a.stats.Deduplicated++
	}
	if len(todo) > 1 {
		for _, it := range todo {
			it.alone = true
		}
		s.queue = append(slices.Clone(todo), s.queue...)
	} else if err := a.deadLetterLocked(s, todo[0], r); err != nil {
		a.setErrLocked(err)
	}
	a.nextLocked(s)
	a.mu.Unlock()
	a.report()
}

// deadLetterLocked replaces the refused event it of stream s by its dead
// letter, queued in its transaction for the dead-letter stream in position
// order; it returns the error that must stop the appender when that is not
// possible.
func (a *Appender) deadLetterLocked(s *streamQ, it *item, r refusal) error {
	size := storeSize(it.typ, it.ev.payload(), it.ev.metadata())
	tl := &TooLargeError{Stream: s.name, Size: size, Limit: r.limit, Store: r.what()}
	if a.dlBuild == nil {
		return tl
	}
	if it.replacement {
		return fmt.Errorf("store: the shortened dead letter at %s is still refused by the store: %w", it.pos, tl)
	}
	ev := a.dlBuild(Refused{Stream: s.name, Type: it.typ, Pos: it.pos, Metadata: it.ev.metadata(), Data: it.ev.payload(), Err: tl})
	if ev.Stream != a.dlStream || (it.dl && ev.Source.Pos != it.pos) || (!it.dl && !it.pos.Less(ev.Source.Pos)) {
		return fmt.Errorf("store: dead letter of %s at %s is for %s at %s: want %s at a later position (the replacement of a dead letter: at its own)", s.name, it.pos, ev.Stream, ev.Source.Pos, a.dlStream)
	}
	dl, err := a.prepare(ev)
	if err != nil {
		return fmt.Errorf("store: the dead letter of the refused event at %s: %w", it.pos, err)
	}
	dl.tx, dl.dl, dl.replacement = it.tx, true, it.dl
	it.tx.outstanding++
	a.pending += dl.size
	a.completeLocked(it)
	q := a.streams[a.dlStream]
	if q == nil {
		q = &streamQ{name: a.dlStream}
		a.streams[a.dlStream] = q
	}
	i := len(q.queue)
	for i > 0 && dl.pos.Less(q.queue[i-1].pos) {
		i--
	}
	q.queue = slices.Insert(q.queue, i, dl)
	if !q.busy && !q.ready {
		q.ready = true
		a.ready = append(a.ready, q)
	}
	a.cfg.Logger.Warn("event refused by the store as too large; dead-lettered", "stream", s.name, "position", it.pos.String(), "err", tl)
	return nil
}

// heldLocked reports whether the dead letter it must wait: an event of a
// transaction at or before its commit LSN is still waiting for the store
// and may yet be refused, which would put its dead letter before it.
func (a *Appender) heldLocked(it *item) bool {
	for _, tx := range a.txs {
		if tx.data > 0 && tx.lsn <= it.pos.CommitLSN {
			return true
		}
	}
	return false
}
