package mapping

import (
	"fmt"
	"sort"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Interest tells the publisher which stored events promotion rules can use,
// so it can filter its subscription on the server.
type Interest struct {
	// Types: event types named by rules' `from` (sorted). An event whose
	// type is listed may match.
	Types []string
	// Categories: stream categories named by rules that have `category` but
	// no `from` (sorted). An event in a listed category may match.
	Categories []string
	// All is true when some rule has neither `from` nor `category`: every
	// event may match and no server-side filter is possible.
	All bool
	// Transactional is true when some rule has scope: transaction, so the
	// publisher must group events by source transaction and call PromoteTx.
	Transactional bool
}

// Interest returns what the promotion rules select.
func (rs *RuleSet) Interest() Interest {
	var in Interest
	types, cats := map[string]bool{}, map[string]bool{}
	for _, r := range rs.promote {
		in.Transactional = in.Transactional || r.tx
		switch {
		case len(r.types) > 0:
			for _, t := range r.types {
				types[t] = true
			}
		case len(r.categories) > 0:
			for _, c := range r.categories {
				cats[c] = true
			}
		default:
			in.All = true
		}
	}
	for t := range types {
		in.Types = append(in.Types, t)
	}
	for c := range cats {
		in.Categories = append(in.Categories, c)
	}
	sort.Strings(in.Types)
	sort.Strings(in.Categories)
	return in
}

// eventRulesFor returns the scope: event rules matching (type, category),
// computed once per distinct pair.
func (rs *RuleSet) eventRulesFor(typ, category string) []*promoteRule {
	k := typeCat{typ, category}
	if rules, ok := (*rs.promCache.Load())[k]; ok {
		return rules
	}
	var rules []*promoteRule
	for _, r := range rs.eventRules {
		if r.matches(typ, category) {
			rules = append(rules, r)
		}
	}
	rs.promMu.Lock()
	defer rs.promMu.Unlock()
	old := *rs.promCache.Load()
	if len(old) >= maxCacheEntries {
		return rules
	}
	next := make(map[typeCat][]*promoteRule, len(old)+1)
	for k2, v := range old {
		next[k2] = v
	}
	next[k] = rules
	rs.promCache.Store(&next)
	return rules
}

// Promote maps one stored event through the scope: event promotion rules and
// appends one Integration per matching rule to dst, in rule order. The error
// contract is Capture's: the outputs of rules that worked are appended, and
// the error is an [EvalErrors] with one *EvalError per failed rule.
func (rs *RuleSet) Promote(ev *StoredEvent, dst []Integration) ([]Integration, error) {
	rules := rs.eventRulesFor(ev.Type, ev.Category())
	if len(rules) == 0 {
		return dst, nil
	}
	e := getEvaluator()
	defer putEvaluator(e)
	e.env["event"] = eventEnv(ev)
	var errs EvalErrors
	for _, r := range rules {
		out, field, err := r.eval(e, ev)
		if err != nil {
			errs = append(errs, &EvalError{Rule: r.name, Field: field, Event: ev, Cause: err})
			continue
		}
		if out != nil {
			dst = append(dst, *out)
		}
	}
	if errs != nil {
		return dst, errs
	}
	return dst, nil
}

// PromoteTx runs the scope: transaction rules over the low-level events of one
// source transaction (in the order the caller gives: the publisher gives the
// source transaction's order, see package publish) and appends at most one Integration per
// rule to dst. A rule fires when at least one event matches its from/category;
// then `event` is the first such event and `events` all events of the
// transaction. Errors follow Capture's contract.
func (rs *RuleSet) PromoteTx(events []StoredEvent, dst []Integration) ([]Integration, error) {
	if len(rs.txRules) == 0 || len(events) == 0 {
		return dst, nil
	}
	e := getEvaluator()
	defer putEvaluator(e)
	var all []any
	var errs EvalErrors
	for _, r := range rs.txRules {
		first := -1
		for i := range events {
			if r.matches(events[i].Type, events[i].Category()) {
				first = i
				break
			}
		}
		if first < 0 {
			continue
		}
		if all == nil {
			all = make([]any, len(events))
			for i := range events {
				all[i] = eventEnv(&events[i])
			}
			e.env["events"] = all
		}
		e.env["event"] = all[first]
		out, field, err := r.eval(e, &events[first])
		if err != nil {
			errs = append(errs, &EvalError{Rule: r.name, Field: field, Events: events, Cause: err})
			continue
		}
		if out != nil {
			dst = append(dst, *out)
		}
	}
	if errs != nil {
		return dst, errs
	}
	return dst, nil
}

func eventEnv(ev *StoredEvent) map[string]any {
	return map[string]any{
		"id": ev.ID, "stream": ev.Stream, "category": ev.Category(), "entityId": ev.EntityID(),
		"revision": int64(ev.Revision), "position": int64(ev.Position), "type": ev.Type,
		"data": ev.Data, "metadata": ev.Metadata, "created": ev.Created,
	}
}

func (r *promoteRule) eval(e *evaluator, ev *StoredEvent) (*Integration, string, error) {
	if r.when != nil {
		v, err := e.run(r.when)
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
	out := &Integration{Rule: r.name, Topic: r.topic, Type: r.typ, Key: ev.EntityID(), Subject: ev.Stream}
	if r.key != nil {
		s, err := e.text(r.key)
		if err != nil {
			return nil, "key", err
		}
		out.Key = s
	}
	if r.subject != nil {
		s, err := e.text(r.subject)
		if err != nil {
			return nil, "subject", err
		}
		out.Subject = s
	}
	buf, field, err := r.value.appendJSON(e.buf[:0], e, contract.UnchangedMarker)
	e.buf = buf
	if err != nil {
		return nil, field, err
	}
	out.Value = append([]byte(nil), buf...)
	if r.schema != nil {
		if err := r.schema.Validate(out.Value); err != nil {
			return nil, "value", err
		}
	}
	if len(r.headers) > 0 {
		out.Headers = make([]Header, 0, len(r.headers))
		for _, h := range r.headers {
			s, err := e.text(h.expr)
			if err != nil {
				return nil, "headers." + h.name, err
			}
			out.Headers = append(out.Headers, Header{Key: h.name, Value: s})
		}
	}
	return out, "", nil
}

// text runs x and formats its result as text; "" is an error.
func (e *evaluator) text(x *expression) (string, error) {
	v, err := e.run(x)
	if err != nil {
		return "", err
	}
	s, err := idText(v)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", ErrEmptyResult
	}
	return s, nil
}
