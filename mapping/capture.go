package mapping

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Capture maps one change through the capture rules and appends one Event per
// matching rule to dst, in rule order, returning the extended slice.
//
// Contract: a rule matches when its table pattern and operation (or, for
// messages, its prefix) match and its `when` is true. A change no rule
// matches appends nothing and returns a nil error; the caller counts it.
// When some matching rules fail at run time, the events of the others are
// still appended and the error is an [EvalErrors] holding one *EvalError per
// failed rule: the caller stores the events it got and dead-letters the
// change once per failed rule. Capture never drops a change silently. A
// rule reading message.content of a message that is not UTF-8 text fails
// with [ErrBinaryContent].
func (rs *RuleSet) Capture(ch *contract.Change, dst []Event) ([]Event, error) {
	return rs.CaptureExcept(ch, dst, nil)
}

// CaptureExcept is Capture, except that each matching rule for which skip
// returns an error is not evaluated: it fails with that error (an
// *EvalError in the EvalErrors, Field ""), keeping its Index, so the other
// rules' events keep their positions. Capture uses it for the rules a
// schema change broke ([RuleSet.Gaps]). skip may be nil.
func (rs *RuleSet) CaptureExcept(ch *contract.Change, dst []Event, skip func(rule string) error) ([]Event, error) {
	var rules []*captureRule
	var tr *tableRules
	if ch.Op == contract.OpMessage {
		if ch.Message == nil {
			return dst, nil
		}
		for _, r := range rs.messages {
			if strings.HasPrefix(ch.Message.Prefix, r.prefix) {
				rules = append(rules, r)
			}
		}
	} else if int(ch.Op) < numOps && ch.Op != 0 {
		tr = rs.rulesFor(ch.Schema, ch.Table)
		rules = tr.byOp[ch.Op]
	}
	if len(rules) == 0 {
		return dst, nil
	}
	ev := getEvaluator()
	defer putEvaluator(ev)
	ev.setChange(ch, rs.captureUses, tr)
	var errs EvalErrors
	binary := ch.Message != nil && !utf8.Valid(ch.Message.Content)
	for i, r := range rules {
		if skip != nil {
			if err := skip(r.name); err != nil {
				errs = append(errs, &EvalError{Rule: r.name, Change: ch, Cause: err})
				continue
			}
		}
		if binary && r.reads.content {
			errs = append(errs, &EvalError{Rule: r.name, Field: "message.content", Change: ch, Cause: ErrBinaryContent})
			continue
		}
		out, field, err := r.eval(ev)
		if err != nil {
			errs = append(errs, &EvalError{Rule: r.name, Field: field, Change: ch, Cause: err})
			continue
		}
		if out == nil {
			continue
		}
		out.Index = i
		dst = append(dst, *out)
	}
	if errs != nil {
		return dst, errs
	}
	return dst, nil
}

// setChange fills the environment with what the rules read.
func (e *evaluator) setChange(ch *contract.Change, uses uint32, tr *tableRules) {
	env := e.env
	env["new"] = row(ch.New)
	env["old"] = row(ch.Old)
	if uses&varOp != 0 {
		env["op"] = opNames[ch.Op]
	}
	if tr != nil {
		env["table"] = tr.table
		env["schema"] = tr.schema
	} else {
		env["table"] = ""
		env["schema"] = ""
	}
	if uses&varDatabase != 0 {
		env["database"] = ch.Database
	}
	if uses&varKey != 0 {
		key := make(map[string]any, len(ch.Key))
		for _, k := range ch.Key {
			if v, ok := ch.New[k]; ok {
				key[k] = v
			} else {
				key[k] = ch.Old[k]
			}
		}
		env["key"] = key
	}
	if uses&varTx != 0 {
		env["tx"] = map[string]any{
			"xid": int64(ch.Tx.XID), "commitLsn": ch.Tx.CommitLSN.String(),
			"commitTime": ch.Tx.CommitTime, "origin": ch.Tx.Origin,
		}
	}
	if uses&varLSN != 0 {
		env["lsn"] = ch.LSN.String()
	}
	if uses&varOrdinal != 0 {
		env["ordinal"] = int64(ch.Ordinal)
	}
	if uses&varMessage != 0 {
		if ch.Message != nil {
			env["message"] = map[string]any{"prefix": ch.Message.Prefix, "content": string(ch.Message.Content),
				"bytes": ch.Message.Content, "transactional": ch.Message.Transactional}
		} else {
			env["message"] = map[string]any(nil)
		}
	}
}

// opNames holds the operation names boxed once.
var opNames = func() [numOps]any {
	var a [numOps]any
	for op := range numOps {
		a[op] = contract.Op(op).String()
	}
	return a
}()

// eval runs one rule; a nil event and nil error mean `when` was false.
func (r *captureRule) eval(ev *evaluator) (*Event, string, error) {
	if r.when != nil {
		v, err := ev.run(r.when)
		if err != nil {
			return nil, "when", err
		}
		b, ok := v.(bool)
		if !ok {
			return nil, "when", fmt.Errorf("%w: when returned %T, want bool", ErrResultType, v)
		}
		if !b {
			return nil, "", nil
		}
	}
	idv, err := ev.run(r.id)
	if err != nil {
		return nil, "stream.id", err
	}
	id, err := idText(idv)
	if err != nil {
		return nil, "stream.id", err
	}
	if id == "" {
		return nil, "stream.id", ErrEmptyResult
	}
	buf, field, err := r.data.appendJSON(ev.buf[:0], ev, r.unchanged)
	ev.buf = buf
	if err != nil {
		return nil, field, err
	}
	out := &Event{
		Rule: r.name, Category: r.category, ID: id, Stream: r.category + "-" + id, Type: r.typ,
		Data: append([]byte(nil), buf...),
	}
	if r.metadata != nil {
		m, field, err := r.metadata.value(ev)
		if err != nil {
			return nil, field, err
		}
		out.Metadata = m.(map[string]any)
	}
	return out, "", nil
}
