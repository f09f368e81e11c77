package mapping

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"

	exprast "github.com/expr-lang/expr/ast"
)

// Decimals (numeric columns in capture rules, and in promotion rules every
// stored number that is not an integer in int64's range) are json.Number:
// their exact text, which contract.AppendJSON writes back digit for digit.
// expr cannot compute with json.Number (a string type to it: 1.5 > 1 is
// "invalid operation"), so the compiler converts them where a rule
// computes: numberOperands wraps the operands of arithmetic and comparison
// operators, of unary minus and of in, the arguments of the numeric
// builtins, and the predicate of sum, in number() whenever their type is
// not known at load (a column or event.data value). A value passed through
// unchanged stays exact; a computed one is float64 (or int64).

// numberOperators are the binary operators whose operands are converted.
var numberOperators = map[string]bool{
	"==": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true,
	"+": true, "-": true, "*": true, "/": true, "%": true, "**": true, "^": true, "in": true,
}

// numberBuiltins are the builtins whose arguments are converted.
var numberBuiltins = map[string]bool{
	"abs": true, "ceil": true, "floor": true, "round": true, "int": true, "float": true,
	"max": true, "min": true, "sum": true, "mean": true, "median": true, "sort": true,
}

// numberOperands is the expr patch described above.
type numberOperands struct{}

func (numberOperands) Visit(node *exprast.Node) {
	switch n := (*node).(type) {
	case *exprast.BinaryNode:
		if numberOperators[n.Operator] {
			toNumberNode(&n.Left)
			toNumberNode(&n.Right)
		}
	case *exprast.UnaryNode:
		if n.Operator == "-" || n.Operator == "+" {
			toNumberNode(&n.Node)
		}
	case *exprast.BuiltinNode:
		if !numberBuiltins[n.Name] {
			return
		}
		for i := range n.Arguments {
			if p, ok := n.Arguments[i].(*exprast.PredicateNode); ok {
				toNumberNode(&p.Node) // sum(events, .data.amount)
				continue
			}
			toNumberNode(&n.Arguments[i])
		}
	}
}

// toNumberNode wraps *n in number() when its type is unknown at load.
func toNumberNode(n *exprast.Node) {
	t := (*n).Type()
	if t != nil && t.Kind() != reflect.Interface && t != jsonNumberType {
		return
	}
	if c, ok := (*n).(*exprast.CallNode); ok {
		if id, ok := c.Callee.(*exprast.IdentifierNode); ok && id.Value == "number" {
			return
		}
	}
	call := &exprast.CallNode{Callee: &exprast.IdentifierNode{Value: "number"}, Arguments: []exprast.Node{*n}}
	exprast.Patch(n, call)
}

var jsonNumberType = reflect.TypeOf(json.Number(""))

// fnNumber is number(v): a json.Number as int64 when it is an integer in
// range, else as float64 (the nearest; ±Inf beyond float64's range); a list
// with its json.Number elements converted so; anything else unchanged.
func fnNumber(args ...any) (any, error) { return toNumber(args[0]), nil }

func toNumber(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return v
		}
		return f
	case []any:
		var out []any // a copy only when an element changes: v may be shared
		for i, e := range x {
			if n, ok := e.(json.Number); ok {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = toNumber(n)
			}
		}
		if out != nil {
			return out
		}
	}
	return v
}
