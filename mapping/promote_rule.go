package mapping

import (
	"fmt"
	"regexp"

	"github.com/goccy/go-yaml/ast"
)

// promoteRule is one compiled promotion rule.
type promoteRule struct {
	idx        int
	name       string
	tx         bool     // scope: transaction
	types      []string // from: event types; empty = any
	categories []string // category: stream categories; empty = any
	when       *expression
	topic      string
	key        *expression // nil: the entity id of the (first matching) event
	typ        string
	subject    *expression // nil: the stream of the (first matching) event
	value      *template
	headers    []header
	schema     *Schema // nil: the rule declares none
}

type header struct {
	name string
	expr *expression
}

var promoteFields = []string{"name", "description", "scope", "from", "category", "when", "topic", "key", "type", "subject", "value", "headers", "schema"}

var topicRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

func (l *loader) promoteRule(n ast.Node) {
	name, fs, ok := l.ruleHead(n, "promote", l.promoteNames, "a promotion rule", promoteFields)
	if !ok {
		return
	}
	before := len(l.problems)
	r := &promoteRule{name: name}
	byKey := map[string]field{}
	for _, f := range fs {
		byKey[f.key] = f
	}
	ruleNode := l.resolve(n)
	l.promoteMatch(r, byKey, ruleNode)
	c := exprCtx{rule: name, env: promoteEnv(r.tx)}
	compile := func(key string, w want) *expression {
		f, ok := byKey[key]
		if !ok {
			return nil
		}
		c.field = key
		src, ok := l.scalarText(f.value)
		if !ok {
			l.addAt(f.value, name, key+" must be an expression string", "")
			return nil
		}
		return l.compileExpr(c, l.resolve(f.value), src, w)
	}
	r.when = compile("when", wantBool)
	r.key = compile("key", wantText)
	r.subject = compile("subject", wantText)
	l.promoteOutput(r, byKey, ruleNode, c)
	if f, ok := byKey["headers"]; ok {
		l.promoteHeaders(r, f, c)
	}
	if f, ok := byKey["schema"]; ok {
		if r.schema = l.promoteSchema(f, r); r.schema != nil && r.value != nil {
			l.checkValueSchema(r)
		}
	}
	if len(l.problems) > before {
		return
	}
	r.idx = len(l.promote)
	l.promote = append(l.promote, r)
}

// promoteMatch reads what a promotion rule matches: scope, from, category.
func (l *loader) promoteMatch(r *promoteRule, byKey map[string]field, ruleNode ast.Node) {
	name := r.name
	if f, ok := byKey["scope"]; ok {
		s, _ := l.scalarText(f.value)
		switch s {
		case "event":
		case "transaction":
			r.tx = true
		default:
			l.addAt(f.value, name, fmt.Sprintf("unknown scope %q", s), "use event (default) or transaction")
		}
	}
	if f, ok := byKey["from"]; ok {
		r.types, _, _ = l.strList(f, name)
	}
	if f, ok := byKey["category"]; ok {
		var nodes []ast.Node
		r.categories, nodes, _ = l.strList(f, name)
		for i, c := range r.categories {
			if msg, hint := categoryProblem(c); msg != "" {
				l.addAt(nodes[i], name, msg, hint)
			}
		}
	}
	if r.tx && len(r.types) == 0 && len(r.categories) == 0 {
		l.addAt(ruleNode, name, "a transaction rule needs from or category", "name the event types that start it, e.g. from: [OrderInserted]")
	}
}

// promoteOutput reads what a promotion rule writes: topic, type, value.
func (l *loader) promoteOutput(r *promoteRule, byKey map[string]field, ruleNode ast.Node, c exprCtx) {
	name := r.name
	if f, ok := byKey["topic"]; ok {
		if s, ok := l.str(f, name); ok {
			if !topicRE.MatchString(s) {
				l.addAt(f.value, name, fmt.Sprintf("invalid Kafka topic name %q", s), "use letters, digits, '.', '_' and '-', at most 249 characters")
			}
			r.topic = s
		}
	} else {
		l.addAt(ruleNode, name, "missing field topic", "e.g. topic: crm.customer.v1")
	}
	if f, ok := byKey["type"]; ok {
		r.typ, _ = l.str(f, name)
	} else {
		l.addAt(ruleNode, name, "missing field type", "name the integration event type, e.g. type: shop.order.placed.v1")
	}
	if f, ok := byKey["value"]; ok {
		r.value = l.compileTemplate(c, f.value, "value")
	} else {
		l.addAt(ruleNode, name, "missing field value", "e.g. value: event.data, or a mapping of fields")
	}
}

// promoteHeaders compiles a promotion rule's headers, expressions giving
// text.
func (l *loader) promoteHeaders(r *promoteRule, f field, c exprCtx) {
	hfs, ok := l.fields(f.value, r.name, "headers", nil)
	if !ok {
		return
	}
	for _, hf := range hfs {
		c.field = "headers." + hf.key
		src, ok := l.scalarText(hf.value)
		if !ok {
			l.addAt(hf.value, r.name, c.field+" must be an expression string", "")
			continue
		}
		if e := l.compileExpr(c, l.resolve(hf.value), src, wantText); e != nil {
			r.headers = append(r.headers, header{name: hf.key, expr: e})
		}
	}
}

func (r *promoteRule) uses() uint32 {
	var u uint32
	for _, e := range []*expression{r.when, r.key, r.subject} {
		if e != nil {
			u |= e.uses
		}
	}
	for _, h := range r.headers {
		u |= h.expr.uses
	}
	return u | r.value.uses()
}

func (r *promoteRule) matches(typ, category string) bool {
	return (len(r.types) == 0 || contains(r.types, typ)) && (len(r.categories) == 0 || contains(r.categories, category))
}
