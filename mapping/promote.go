package mapping

import (
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

// ReadsMetadata reports whether some promotion rule may read a stored
// event's metadata (event.metadata, or an event handed on whole, as in
// events or toJSON(event)): when none does, a reader may leave
// StoredEvent.Metadata nil instead of decoding it into a map.
func (rs *RuleSet) ReadsMetadata() bool { return rs.promoteUses&varMetadata != 0 }

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
	if e.event == nil {
		e.event = make(map[string]any, 10)
	}
	e.env["event"] = eventEnvInto(e.event, ev)
	var errs EvalErrors
	for _, r := range rules {
		out, field, err := r.eval(e, ev)
		dst, errs = collect(dst, errs, out, r.failure(field, err, ev, nil))
	}
	return dst, errs.orNil()
}

// collect appends a rule's output to dst, or its failure to errs.
func collect(dst []Integration, errs EvalErrors, out *Integration, fail *EvalError) ([]Integration, EvalErrors) {
	switch {
	case fail != nil:
		errs = append(errs, fail)
	case out != nil:
		dst = append(dst, *out)
	}
	return dst, errs
}

// failure is the rule's *EvalError for err (nil for none), naming the event
// (event rules) or the transaction's events (transaction rules).
func (r *promoteRule) failure(field string, err error, ev *StoredEvent, events []StoredEvent) *EvalError {
	if err == nil {
		return nil
	}
	return &EvalError{Rule: r.name, Field: field, Event: ev, Events: events, Cause: err}
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
		dst, errs = collect(dst, errs, out, r.failure(field, err, nil, events))
	}
	return dst, errs.orNil()
}

func eventEnv(ev *StoredEvent) map[string]any { return eventEnvInto(make(map[string]any, 10), ev) }

// eventEnvInto fills m with ev as rules see it (`event`). Promote refills
// one map per evaluator instead of making one per event: nothing an
// evaluation returns keeps it (outputs are encoded to bytes and strings).
func eventEnvInto(m map[string]any, ev *StoredEvent) map[string]any {
	m["id"], m["stream"], m["category"], m["entityId"] = ev.ID, ev.Stream, ev.Category(), ev.EntityID()
	m["revision"], m["position"], m["type"] = int64(ev.Revision), int64(ev.Position), ev.Type
	m["data"], m["metadata"], m["created"] = ev.Data, ev.Metadata, ev.Created
	return m
}

func (r *promoteRule) eval(e *evaluator, ev *StoredEvent) (*Integration, string, error) {
	if ok, err := e.when(r.when); err != nil || !ok {
		return nil, "when", err
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
