package mapping

import exprast "github.com/expr-lang/expr/ast"

// row is a row for the environment: nil (not a nil map) when the change
// has none, so that new is nil on delete and old where the server sent no
// old row: coalesce(new, old) is the row there is, and new == nil tells a
// delete.
func row(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// absentRows makes a column read of an absent row nil, as if written with
// ?. (new.x on a delete, old.x on an insert, coalesce(new.id, old.id)): a
// row is nil when absent (row), and a member access on nil would otherwise
// fail. It wraps every member access rooted at new or old in a chain with
// the access optional, which is what the parser makes of new?.x.
type absentRows struct{}

func (absentRows) Visit(node *exprast.Node) {
	m, ok := (*node).(*exprast.MemberNode)
	if !ok || m.Optional || !rootedAtRow(m.Node) {
		return
	}
	m.Optional = true
	exprast.Patch(node, &exprast.ChainNode{Node: m})
}

// rootedAtRow reports whether n is new or old, or a member access (or
// chain) on them.
func rootedAtRow(n exprast.Node) bool {
	for {
		switch x := n.(type) {
		case *exprast.IdentifierNode:
			return x.Value == "new" || x.Value == "old"
		case *exprast.MemberNode:
			n = x.Node
		case *exprast.ChainNode:
			n = x.Node
		default:
			return false
		}
	}
}
