package mapping

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	exprast "github.com/expr-lang/expr/ast"
)

// DeriveSchema drafts a JSON Schema for the values of the promotion rule
// named rule, from its value template, to be checked, completed and pinned
// in a file (schema: FILE.json): a mapping becomes a closed object with
// every field required, a list an array typed by its first item, a constant
// its type, an expression the type its compiler knows; event.data.<field>
// is followed to the capture rules of the set that produce the rule's
// events (by its from types, else its categories) and typed by their data
// expressions (with the catalogue's column types when the set was loaded
// with one): "null" is added when some producer does not write the field.
// A type that is not known is left open ({}) with a description naming the
// expression. ok is false when there is no such promotion rule.
func (rs *RuleSet) DeriveSchema(rule string) (schema map[string]any, ok bool) {
	for _, r := range rs.promote {
		if r.name == rule {
			d := deriver{rs: rs, rule: r}
			s := d.derive(r.value, 0)
			s["$schema"] = "http://json-schema.org/draft-07/schema#"
			if r.typ != "" {
				s["title"] = r.typ
			}
			return s, true
		}
	}
	return nil, false
}

type deriver struct {
	rs   *RuleSet
	rule *promoteRule
}

func (d *deriver) derive(t *template, depth int) map[string]any {
	if t == nil || depth > maxSchemaDepth {
		return map[string]any{}
	}
	switch t.kind {
	case tmplMap:
		props := make(map[string]any, len(t.keys))
		for i, k := range t.keys {
			props[k] = d.derive(t.vals[i], depth+1)
		}
		return map[string]any{"type": "object", "additionalProperties": false, "properties": props, "required": append([]string(nil), t.keys...)}
	case tmplList:
		s := map[string]any{"type": "array"}
		if len(t.items) > 0 {
			s["items"] = d.derive(t.items[0], depth+1)
		}
		return s
	case tmplConst:
		if jt := constJSONType(t.cval, t.cjson); jt != "" {
			return map[string]any{"type": jt}
		}
		return map[string]any{}
	}
	if t.expr.prog != nil {
		if jt := goJSONType(t.expr.prog.Node().Type()); jt != "" {
			return map[string]any{"type": jt}
		}
		if field, ok := dataField(t.expr.prog.Node()); ok {
			if s := d.fromProducers(field, depth); s != nil {
				return s
			}
		}
	}
	return map[string]any{"description": fmt.Sprintf("from the expression %s, whose type is not known here: fill it in", t.expr.src)}
}

// dataField recognises event.data.<field>.
func dataField(n exprast.Node) (string, bool) {
	if c, ok := n.(*exprast.ChainNode); ok {
		n = c.Node
	}
	m, ok := n.(*exprast.MemberNode)
	if !ok {
		return "", false
	}
	prop, ok := m.Property.(*exprast.StringNode)
	if !ok {
		return "", false
	}
	inner, ok := m.Node.(*exprast.MemberNode)
	if !ok {
		return "", false
	}
	if p, ok := inner.Property.(*exprast.StringNode); !ok || p.Value != "data" {
		return "", false
	}
	id, ok := inner.Node.(*exprast.IdentifierNode)
	return prop.Value, ok && id.Value == "event"
}

// fromProducers types event.data.<field> by the capture rules producing
// the rule's events; nil when none does, or they disagree on something
// other than the type.
func (d *deriver) fromProducers(field string, depth int) map[string]any {
	var types []string
	nullable, found := false, false
	for _, c := range d.rs.capture {
		if !d.rule.matches(c.typ, c.category) {
			continue
		}
		if c.data == nil || c.data.kind != tmplMap {
			return nil
		}
		i := slices.Index(c.data.keys, field)
		if i < 0 {
			nullable = true
			continue
		}
		s := d.derive(c.data.vals[i], depth+1)
		t, ok := s["type"].(string)
		if !ok || len(s) != 1 {
			return nil // open, or a structure: not merged here
		}
		found = true
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	if !found {
		return nil
	}
	if nullable {
		types = append(types, "null")
	}
	sort.Strings(types)
	if len(types) == 1 {
		return map[string]any{"type": types[0]}
	}
	list := make([]any, len(types))
	for i, t := range types {
		list[i] = t
	}
	return map[string]any{"type": list}
}

// DeriveSchemaJSON is DeriveSchema as indented JSON.
func (rs *RuleSet) DeriveSchemaJSON(rule string) ([]byte, bool) {
	s, ok := rs.DeriveSchema(rule)
	if !ok {
		return nil, false
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n'), true
}
