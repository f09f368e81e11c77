package mapping

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// checkValueSchema compares a promotion rule's value template with its
// schema at load time, as far as that can be known without evaluating
// anything: the fields a mapping writes against the schema's properties,
// required and additionalProperties (recursively, also through items and
// local $ref), constants against the schema's type, and expressions whose
// result type the compiler knows against it. Expressions typed any (most
// of them: event.data is any) are checked at run time, value by value.
func (l *loader) checkValueSchema(r *promoteRule) {
	c := schemaChecker{l: l, rule: r.name, root: r.schema.Doc}
	c.check(r.value, r.schema.Doc, 0)
}

type schemaChecker struct {
	l    *loader
	rule string
	root any
}

const maxSchemaDepth = 32

// resolve returns the schema object s stands for, following local $refs;
// ok false when it cannot be read statically (a boolean true schema, a
// reference outside the document).
func (c *schemaChecker) resolve(s any) (m map[string]any, ok bool) {
	for range maxSchemaDepth {
		m, ok = s.(map[string]any)
		if !ok {
			return nil, false
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			return m, true
		}
		s, ok = pointer(c.root, ref)
		if !ok {
			return nil, false
		}
	}
	return nil, false
}

// pointer follows a local JSON pointer reference ("#/definitions/x") in doc.
func pointer(doc any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#") {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ref[1:], "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (c *schemaChecker) check(t *template, s any, depth int) {
	if t == nil || depth > maxSchemaDepth {
		return
	}
	if b, ok := s.(bool); ok && !b {
		c.l.addAt(t.node, c.rule, fmt.Sprintf("%s: the schema allows no value here (false)", t.field), "remove the field, or allow it in the schema")
		return
	}
	m, ok := c.resolve(s)
	if !ok {
		return
	}
	types := schemaTypes(m)
	switch t.kind {
	case tmplMap:
		if !c.allows(t, types, "object") {
			return
		}
		c.checkObject(t, m, depth)
	case tmplList:
		if !c.allows(t, types, "array") {
			return
		}
		if items, ok := m["items"]; ok {
			if _, tuple := items.([]any); !tuple {
				for _, it := range t.items {
					c.check(it, items, depth+1)
				}
			}
		}
	case tmplConst:
		c.allows(t, types, constJSONType(t.cval, t.cjson))
	case tmplExpr:
		if t.expr.prog == nil {
			return
		}
		rt := t.expr.prog.Node().Type()
		if jt := goJSONType(rt); jt != "" && !allowsType(types, jt) {
			c.l.addAt(t.node, c.rule, fmt.Sprintf("%s: the expression returns %s (JSON %s); the schema wants %s", t.field, rt, jt, strings.Join(types, " or ")),
				"convert the result (string(x), int(x), ...) or change the schema")
		}
	}
}

func (c *schemaChecker) checkObject(t *template, m map[string]any, depth int) {
	props, _ := m["properties"].(map[string]any)
	req, _ := m["required"].([]any)
	for _, r := range req {
		name, _ := r.(string)
		if name != "" && !contains(t.keys, name) {
			c.l.addAt(t.node, c.rule, fmt.Sprintf("%s has no field %q, which the schema requires", t.field, name),
				fmt.Sprintf("add %s: <expression>, or drop %q from the schema's required", name, name))
		}
	}
	_, patterns := m["patternProperties"]
	addl, hasAddl := m["additionalProperties"]
	for i, k := range t.keys {
		switch ps, ok := props[k]; {
		case ok:
			c.check(t.vals[i], ps, depth+1)
		case patterns:
			// Matched (or not) by a pattern: not followed here.
		case hasAddl && addl == false:
			c.l.addAt(t.vals[i].node, c.rule, fmt.Sprintf("%s is not in the schema, which allows no other fields (additionalProperties: false)", t.vals[i].field),
				fmt.Sprintf("add %q to the schema's properties, or remove the field", k))
		case hasAddl:
			c.check(t.vals[i], addl, depth+1)
		}
	}
}

// allows reports whether types admit a value of JSON type jt, and adds a
// problem when they do not.
func (c *schemaChecker) allows(t *template, types []string, jt string) bool {
	if allowsType(types, jt) {
		return true
	}
	c.l.addAt(t.node, c.rule, fmt.Sprintf("%s is %s; the schema wants %s", t.field, article(jt), strings.Join(types, " or ")), "change the value or the schema")
	return false
}

func article(jt string) string {
	switch jt {
	case "object", "array", "integer":
		return "an " + jt
	case "null":
		return "null"
	}
	return "a " + jt
}

// schemaTypes is the schema's "type" as a list (nil: any type).
func schemaTypes(m map[string]any) []string {
	switch t := m["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// allowsType: an integer is a number, and a number-typed expression may
// write an integral value, so number and integer admit each other here
// (the value is checked exactly at run time).
func allowsType(types []string, jt string) bool {
	if len(types) == 0 || jt == "" {
		return true
	}
	for _, t := range types {
		if t == jt || (t == "number" && jt == "integer") || (t == "integer" && jt == "number") {
			return true
		}
	}
	return false
}

func constJSONType(v any, js []byte) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "number"
	case string:
		return "string"
	}
	if string(js) == "null" {
		return "null"
	}
	return ""
}

var timeReflect = reflect.TypeOf(time.Time{})

// goJSONType is the JSON type contract.AppendJSON writes for a value of Go
// type t, "" when not known statically.
func goJSONType(t reflect.Type) string {
	if t == nil {
		return ""
	}
	if t == timeReflect {
		return "string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string" // bytea: base64
		}
		return "array"
	}
	return ""
}
