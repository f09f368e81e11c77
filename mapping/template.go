package mapping

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// template is a compiled `data`, `value`, `metadata` or `headers` field: a
// YAML structure whose string leaves are expressions and whose other scalar
// leaves (numbers, booleans, null) are constants.
type template struct {
	kind  tmplKind
	field string      // "data", "data.customer.email", "value.lines[0]"...
	expr  *expression // tmplExpr
	keys  []string    // tmplMap, in file order
	keyJS [][]byte    // `"key":` pre-encoded
	vals  []*template // tmplMap
	items []*template // tmplList
	cval  any         // tmplConst
	cjson []byte      // tmplConst pre-encoded
	node  ast.Node    // where it is written, for problems found after compiling
}

type tmplKind uint8

const (
	tmplExpr tmplKind = iota
	tmplMap
	tmplList
	tmplConst
)

// compileTemplate compiles node n of a rule field named path.
func (l *loader) compileTemplate(c exprCtx, n ast.Node, path string) *template {
	n = l.resolve(n)
	c.field = path
	switch x := n.(type) {
	case *ast.MappingNode:
		fs, ok := l.fields(x, c.rule, path, nil)
		if !ok {
			return nil
		}
		t := &template{kind: tmplMap, field: path, node: x}
		good := true
		for _, f := range fs {
			v := l.compileTemplate(c, f.value, path+"."+f.key)
			if v == nil {
				good = false
				continue
			}
			t.keys = append(t.keys, f.key)
			t.keyJS = append(t.keyJS, append(contract.AppendString(nil, f.key), ':'))
			t.vals = append(t.vals, v)
		}
		if !good {
			return nil
		}
		return t
	case *ast.SequenceNode:
		t := &template{kind: tmplList, field: path, node: x}
		good := true
		for i, v := range x.Values {
			it := l.compileTemplate(c, v, fmt.Sprintf("%s[%d]", path, i))
			if it == nil {
				good = false
				continue
			}
			t.items = append(t.items, it)
		}
		if !good {
			return nil
		}
		return t
	case *ast.StringNode, *ast.LiteralNode:
		src, _ := l.scalarText(x)
		e := l.compileExpr(c, x, src, wantAny)
		if e == nil {
			return nil
		}
		return &template{kind: tmplExpr, field: path, expr: e, node: x}
	case *ast.NullNode:
		return &template{kind: tmplConst, field: path, cjson: []byte("null"), node: x}
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		v := x.(interface{ GetValue() any }).GetValue()
		switch iv := v.(type) {
		case uint64:
			v = int64(iv)
		case int:
			v = int64(iv)
		}
		js, err := contract.AppendJSON(nil, v, contract.UnchangedError)
		if err != nil {
			l.addAt(x, c.rule, path+": "+err.Error(), "")
			return nil
		}
		return &template{kind: tmplConst, field: path, cval: v, cjson: js, node: x}
	case *ast.AliasNode:
		l.addAt(x, c.rule, path+": unknown alias", "define the anchor (&name) before using it")
		return nil
	}
	l.addAt(n, c.rule, fmt.Sprintf("%s: unsupported YAML %s", path, kindOf(n)), "")
	return nil
}

// uses returns the environment variables the template reads.
func (t *template) uses() uint32 {
	if t == nil {
		return 0
	}
	switch t.kind {
	case tmplExpr:
		return t.expr.uses
	case tmplMap:
		var u uint32
		for _, v := range t.vals {
			u |= v.uses()
		}
		return u
	case tmplList:
		var u uint32
		for _, v := range t.items {
			u |= v.uses()
		}
		return u
	}
	return 0
}

// appendJSON evaluates t in env and appends its JSON encoding to buf.
// On failure it returns the field path that failed with the cause.
func (t *template) appendJSON(buf []byte, ev *evaluator, pol contract.UnchangedPolicy) ([]byte, string, error) {
	switch t.kind {
	case tmplConst:
		return append(buf, t.cjson...), "", nil
	case tmplExpr:
		v, err := ev.run(t.expr)
		if err != nil {
			return buf, t.field, err
		}
		out, err := contract.AppendJSON(buf, v, pol)
		if err != nil {
			return buf, t.field, err
		}
		return out, "", nil
	case tmplMap:
		buf = append(buf, '{')
		first := true
		for i, v := range t.vals {
			if pol == contract.UnchangedOmit && v.kind == tmplExpr {
				val, err := ev.run(v.expr)
				if err != nil {
					return buf, v.field, err
				}
				if contract.IsUnchanged(val) {
					continue
				}
				if !first {
					buf = append(buf, ',')
				}
				first = false
				buf = append(buf, t.keyJS[i]...)
				if buf, err = contract.AppendJSON(buf, val, pol); err != nil {
					return buf, v.field, err
				}
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = append(buf, t.keyJS[i]...)
			var f string
			var err error
			if buf, f, err = v.appendJSON(buf, ev, pol); err != nil {
				return buf, f, err
			}
		}
		return append(buf, '}'), "", nil
	case tmplList:
		buf = append(buf, '[')
		for i, v := range t.items {
			if i > 0 {
				buf = append(buf, ',')
			}
			var f string
			var err error
			if buf, f, err = v.appendJSON(buf, ev, pol); err != nil {
				return buf, f, err
			}
		}
		return append(buf, ']'), "", nil
	}
	return buf, t.field, fmt.Errorf("unknown template kind %d", t.kind)
}

// value evaluates t in env to a Go value (maps are map[string]any): a
// capture rule's metadata, which the store encodes with the event's source.
func (t *template) value(ev *evaluator) (any, string, error) {
	switch t.kind {
	case tmplConst:
		return t.cval, "", nil
	case tmplExpr:
		v, err := ev.run(t.expr)
		if err != nil {
			return nil, t.field, err
		}
		if contract.IsUnchanged(v) {
			return nil, t.field, ErrUnchangedValue
		}
		// The store writes the value later (contract.AppendMetadata): one
		// it would refuse (NaN, ±Inf) fails the rule here, naming the
		// field, as in data, instead of failing the store's append.
		buf, err := contract.AppendJSON(ev.buf[:0], v, contract.UnchangedMarker)
		ev.buf = buf
		if err != nil {
			return nil, t.field, err
		}
		return v, "", nil
	case tmplMap:
		m := make(map[string]any, len(t.keys))
		for i, v := range t.vals {
			x, f, err := v.value(ev)
			if err != nil {
				return nil, f, err
			}
			m[t.keys[i]] = x
		}
		return m, "", nil
	case tmplList:
		s := make([]any, len(t.items))
		for i, v := range t.items {
			x, f, err := v.value(ev)
			if err != nil {
				return nil, f, err
			}
			s[i] = x
		}
		return s, "", nil
	}
	return nil, t.field, fmt.Errorf("unknown template kind %d", t.kind)
}
