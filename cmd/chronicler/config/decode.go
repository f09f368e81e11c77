package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/chronicler-dev/chronicler/mapping"
)

// decodeFile parses src and sets every setting it holds into c. Every
// problem (an unknown key, with the closest known one; a value of the wrong
// type; a duplicate key) becomes an *Error at its file:line:col with the
// setting's path, in the same form as validation's, and the path is marked
// so that validation does not report it a second time. A YAML syntax error
// ends the decoding (nothing after it can be placed); it is reported in
// the same form, and decodeFile returns false. Error texts never quote the source line: it could hold a
// password.
func decodeFile(src []byte, c *Config, v *validator) bool {
	f, err := parser.ParseBytes(src, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		e := &Error{File: v.file, Reason: "YAML syntax: " + yamlMessage(err)}
		var se *yaml.SyntaxError
		if errors.As(err, &se) && se.Token != nil && se.Token.Position != nil {
			e.Line, e.Col = se.Token.Position.Line, se.Token.Position.Column
			e.Reason = "YAML syntax: " + se.Message
		}
		v.errs = append(v.errs, e)
		return false
	}
	v.ast = f
	d := &decoder{v: v, anchors: map[string]ast.Node{}}
	docs := 0
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if docs++; docs > 1 {
			v.at(doc.Body, "", "a second YAML document: the config file is one document (remove the '---')")
			continue
		}
		d.value(doc.Body, reflect.ValueOf(c).Elem(), "")
	}
	return true
}

// yamlMessage is a parse error's message without the source excerpt.
func yamlMessage(err error) string {
	return strings.ReplaceAll(yaml.FormatError(err, false, false), "\n", " ")
}

type decoder struct {
	v       *validator
	anchors map[string]ast.Node
}

// resolve follows anchors, aliases and tags to the node that holds the value.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for {
		switch x := n.(type) {
		case *ast.AnchorNode:
			d.anchors[x.Name.String()] = x.Value
			n = x.Value
		case *ast.AliasNode:
			target, ok := d.anchors[x.Value.String()]
			if !ok {
				return n
			}
			n = target
		case *ast.TagNode:
			n = x.Value
		default:
			return n
		}
	}
}

// value decodes node n into the setting rv at path.
func (d *decoder) value(n ast.Node, rv reflect.Value, path string) {
	n = d.resolve(n)
	if _, null := n.(*ast.NullNode); null {
		return // an empty section or setting keeps its default
	}
	switch rv.Kind() {
	case reflect.Struct:
		d.section(n, rv, path)
	case reflect.String:
		if s, ok := d.text(n, path); ok {
			rv.SetString(s)
		}
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.wrongType(n, path, "is not true or false")
			return
		}
		rv.SetBool(b.Value)
	case reflect.Int, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := rv.Type().Bits()
		x, ok := integer(n)
		if !ok || x < -(1<<(bits-1)) || x > 1<<(bits-1)-1 {
			d.wrongType(n, path, fmt.Sprintf("is not an integer (%d-bit)", bits))
			return
		}
		rv.SetInt(x)
	case reflect.Slice: // []string
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.v.decodeFailed(n, path, fmt.Sprintf("want a list, e.g. [a, b], found %s", mapping.NodeKind(n)))
			return
		}
		list := make([]string, 0, len(seq.Values))
		good := true
		for i, item := range seq.Values {
			s, ok := d.text(d.resolve(item), fmt.Sprintf("%s[%d]", path, i))
			good = good && ok
			list = append(list, s)
		}
		if good {
			rv.Set(reflect.ValueOf(list))
		} else {
			d.v.failed[path] = true // reported at the element
		}
	default:
		panic("config: no YAML decoder for " + rv.Kind().String() + " (" + path + ")")
	}
}

// integer is the value of an integer node.
func integer(n ast.Node) (int64, bool) {
	i, ok := n.(*ast.IntegerNode)
	if !ok {
		return 0, false
	}
	switch x := i.Value.(type) {
	case int64:
		return x, true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// section decodes a mapping into the struct rv, reporting unknown and
// duplicate keys.
func (d *decoder) section(n ast.Node, rv reflect.Value, path string) {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		what := "the config file"
		if path != "" {
			what = "a section"
		}
		d.v.decodeFailed(n, path, fmt.Sprintf("%s must be a mapping of keys, found %s", what, mapping.NodeKind(n)))
		return
	}
	fields := map[string]int{}
	var names []string
	t := rv.Type()
	for i := range t.NumField() {
		if tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && t.Field(i).IsExported() {
			fields[tag] = i
			names = append(names, tag)
		}
	}
	seen := map[string]bool{}
	for _, mv := range pairs {
		key := strings.TrimSpace(d.resolve(mv.Key).String())
		p := key
		if path != "" {
			p = path + "." + key
		}
		i, ok := fields[key]
		if !ok {
			reason := "unknown key"
			if path != "" {
				reason += " in " + path
			}
			if near := mapping.Closest(key, names, 3); near != "" {
				reason += fmt.Sprintf(": did you mean %s?", near)
			} else {
				reason += fmt.Sprintf("; the keys here are %s", strings.Join(names, ", "))
			}
			d.v.at(mv.Key, p, "%s (see deploy/examples/chronicler.yaml)", reason)
			continue
		}
		if seen[key] {
			d.v.at(mv.Key, p, "set twice in this section: keep one")
			continue
		}
		seen[key] = true
		d.value(mv.Value, rv.Field(i), p)
	}
}

// text is a scalar as a string setting: strings as written, numbers and
// booleans as their text (a password 1234 is "1234").
func (d *decoder) text(n ast.Node, path string) (string, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		return x.Value.Value, true
	case *ast.NullNode:
		return "", true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	d.v.decodeFailed(n, path, fmt.Sprintf("want a text value, found %s", mapping.NodeKind(n)))
	return "", false
}

// wrongType reports a scalar of the wrong type, quoting it (no setting of a
// non-text type is a secret), or the kind of a non-scalar.
func (d *decoder) wrongType(n ast.Node, path, reason string) {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		d.v.decodeFailed(n, path, fmt.Sprintf("%s %s", mapping.NodeKind(n), reason))
	default:
		d.v.decodeFailed(n, path, fmt.Sprintf("%q %s", n.GetToken().Value, reason))
	}
}
