package mapping

import (
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// resolve strips anchors and tags and follows aliases.
func (l *loader) resolve(n ast.Node) ast.Node {
	for range 16 {
		switch x := n.(type) {
		case *ast.AnchorNode:
			if name, ok := x.Name.(*ast.StringNode); ok {
				l.anchors[name.Value] = x.Value
			}
			n = x.Value
		case *ast.TagNode:
			n = x.Value
		case *ast.AliasNode:
			name := ""
			if s, ok := x.Value.(*ast.StringNode); ok {
				name = s.Value
			}
			target, ok := l.anchors[name]
			if !ok {
				return x
			}
			n = target
		default:
			return n
		}
	}
	return n
}

// pos returns the 1-based line and column of n.
func pos(n ast.Node) (int, int) {
	if n == nil {
		return 0, 0
	}
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && !m.IsFlowStyle {
		n = m.Values[0].Key // the first key, not the ':' after it
	}
	t := n.GetToken()
	if t == nil || t.Position == nil {
		return 0, 0
	}
	return t.Position.Line, t.Position.Column
}

func (l *loader) addAt(n ast.Node, rule, msg, hint string) {
	line, col := pos(n)
	l.problems = append(l.problems, Problem{File: l.file, Line: line, Col: col, Rule: rule, Message: msg, Hint: hint})
}

// field is one key of a YAML mapping with its value.
type field struct {
	key   string
	keyN  ast.Node
	value ast.Node
}

// fields returns the entries of mapping n, reporting non-string and duplicate
// keys and keys not in known (when known is non-nil).
func (l *loader) fields(n ast.Node, rule, what string, known []string) ([]field, bool) {
	n = l.resolve(n)
	m, ok := n.(*ast.MappingNode)
	if !ok {
		l.addAt(n, rule, fmt.Sprintf("%s must be a mapping, found %s", what, kindOf(n)), "")
		return nil, false
	}
	seen := make(map[string]bool, len(m.Values))
	out := make([]field, 0, len(m.Values))
	for _, mv := range m.Values {
		var key string
		switch k := l.resolve(mv.Key).(type) {
		case *ast.StringNode:
			key = k.Value
		case *ast.MappingKeyNode:
			l.addAt(mv.Key, rule, "complex mapping keys are not supported", "")
			continue
		default:
			if k == nil {
				continue
			}
			key = k.String()
		}
		if key == "<<" {
			l.addAt(mv.Key, rule, "merge keys (<<) are not supported in rule files", "repeat the fields or use a separate rule")
			continue
		}
		if seen[key] {
			l.addAt(mv.Key, rule, fmt.Sprintf("duplicate field %q in %s", key, what), "remove one of them")
			continue
		}
		seen[key] = true
		if known != nil && !contains(known, key) {
			hint := "known fields: " + strings.Join(sorted(known), ", ")
			if s := closest(key, known); s != "" {
				hint = "did you mean " + s + "? " + hint
			}
			l.addAt(mv.Key, rule, fmt.Sprintf("unknown field %q in %s", key, what), hint)
			continue
		}
		out = append(out, field{key: key, keyN: mv.Key, value: mv.Value})
	}
	return out, true
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// scalarText returns the text of a scalar (string, number, bool) node.
func (l *loader) scalarText(n ast.Node) (string, bool) {
	switch x := l.resolve(n).(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		return x.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return x.GetToken().Value, true
	}
	return "", false
}

// str returns a required string scalar.
func (l *loader) str(f field, rule string) (string, bool) {
	s, ok := l.scalarText(f.value)
	if !ok {
		l.addAt(f.value, rule, fmt.Sprintf("%s must be a string, found %s", f.key, kindOf(l.resolve(f.value))), "")
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		l.addAt(f.value, rule, f.key+" must not be empty", "")
		return "", false
	}
	return s, true
}

// strList accepts a string or a sequence of strings.
func (l *loader) strList(f field, rule string) ([]string, []ast.Node, bool) {
	n := l.resolve(f.value)
	if seq, ok := n.(*ast.SequenceNode); ok {
		out := make([]string, 0, len(seq.Values))
		nodes := make([]ast.Node, 0, len(seq.Values))
		good := true
		for _, v := range seq.Values {
			s, ok := l.scalarText(v)
			if !ok || strings.TrimSpace(s) == "" {
				l.addAt(v, rule, f.key+" entries must be non-empty strings", "")
				good = false
				continue
			}
			out = append(out, s)
			nodes = append(nodes, v)
		}
		if len(out) == 0 && good {
			l.addAt(n, rule, f.key+" must not be empty", "")
			good = false
		}
		return out, nodes, good
	}
	s, ok := l.str(f, rule)
	if !ok {
		return nil, nil, false
	}
	return []string{s}, []ast.Node{n}, true
}

func kindOf(n ast.Node) string { return NodeKind(n) }

// NodeKind names what a YAML node holds, for messages ("a mapping", "a
// list", "a string"...). The config file's decoder uses it too.
func NodeKind(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode, nil:
		return "nothing"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return n.Type().String()
}
