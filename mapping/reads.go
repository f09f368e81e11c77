package mapping

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	exprast "github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/types"
	yamlast "github.com/goccy/go-yaml/ast"
)

// reads is what a capture rule reads of its input, found in its
// expressions at load: the columns it names (new.x, old.x, key.x,
// new["x"]), whether it reads a whole row (new or old itself, or a column
// by a computed name), and whether it reads a message's content. Capture
// uses it to find the rules a schema change breaks ([RuleSet.Gaps]) and
// the rules a binary message's content would corrupt.
type reads struct {
	columns map[string]string // column -> file:line:col of its first read
	rows    bool              // a whole row (or a computed column name)
	content bool              // message.content, or the whole message
	at      string            // the rule's file:line:col
}

// noteReads adds what expression tree (src, at YAML node n) reads to the
// rule being compiled (l.reads; nil outside capture rules).
func (l *loader) noteReads(n yamlast.Node, src string, tree exprast.Node) {
	r := l.reads
	if r == nil {
		return
	}
	idents := map[string]int{}  // new, old, key, message: every use
	members := map[string]int{} // ... of them as the base of x.name
	exprast.Find(tree, func(node exprast.Node) bool {
		switch x := node.(type) {
		case *exprast.IdentifierNode:
			idents[x.Value]++
		case *exprast.MemberNode:
			id, ok := x.Node.(*exprast.IdentifierNode)
			prop, isName := x.Property.(*exprast.StringNode)
			if !ok || !isName {
				return false
			}
			members[id.Value]++
			switch id.Value {
			case "new", "old", "key":
				if _, seen := r.columns[prop.Value]; !seen {
					line, col := exprPosition(n, src, prop.Location().From)
					r.columns[prop.Value] = fmt.Sprintf("%s:%d:%d", l.file, line, col)
				}
			case "message":
				r.content = r.content || prop.Value == "content"
			}
		}
		return false
	})
	r.rows = r.rows || idents["new"] > members["new"] || idents["old"] > members["old"]
	r.content = r.content || idents["message"] > members["message"]
}

// driftColumn is checkColumn's answer under Options.Drift for a column the
// table lacks: no problem, the column typed any (in a rule matching one
// table: with several, columns are untyped anyway), and the read is known
// to reads, so [RuleSet.Gaps] reports it.
func driftColumn(c exprCtx, column string) {
	if m, ok := c.env["new"].(types.Map); ok {
		if _, open := m[types.Extra]; !open {
			m[column] = types.Any // new and old share this map
		}
	}
}

// Gap is a capture rule that no longer fits its table: it reads columns the
// table does not have (a column renamed or dropped since the rule was
// written), or it does not compile against the types the table's columns
// have now (a column's type changed; Options.Drift).
type Gap struct {
	Rule    string
	Table   string   // "schema.table"
	Columns []string // the columns it reads that the table lacks, sorted
	// At is the file:line:col of the first read of Columns[0] (of the rule,
	// when it reads a whole row).
	At string
	// Retyped is the type problem the rule has against the table's column
	// types (file:line:col: message), "" when it has none.
	Retyped string
}

func (g Gap) String() string {
	var parts []string
	if len(g.Columns) > 0 {
		parts = append(parts, fmt.Sprintf("rule %q (%s) reads %s %s of %s, which the table does not have", g.Rule, g.At,
			plural(len(g.Columns), "column", "columns"), strings.Join(g.Columns, ", "), g.Table))
	}
	if g.Retyped != "" {
		parts = append(parts, fmt.Sprintf("rule %q does not compile against the column types %s has now: %s", g.Rule, g.Table, g.Retyped))
	}
	return strings.Join(parts, "; ")
}

// ErrSchemaGap is the cause (errors.Is) of a rule that was not evaluated
// because it no longer fits its table's columns ([RuleSet.Gaps]).
var ErrSchemaGap = errors.New("the rule does not fit its table's columns now (a column renamed or dropped, or its type changed)")

// ErrBinaryContent is the cause of a message rule that reads
// message.content of a message whose content is not UTF-8 text: reading it
// as text would corrupt it (message.bytes is the content as bytes).
var ErrBinaryContent = errors.New("the message content is not UTF-8 text: read message.bytes (bytes, base64 in JSON), not message.content")

// Gaps returns, in rule order, the capture rules matching table
// ("schema.table") that read columns not in columns (the table's columns
// now): the columns they name, and for a rule that reads a whole row
// (data: new) every column the table had in the Catalogue the set was
// loaded against. Without a Catalogue, whole-row reads are not compared.
func (rs *RuleSet) Gaps(table string, columns []string) []Gap {
	var out []Gap
	have := make(map[string]bool, len(columns))
	for _, c := range columns {
		have[c] = true
	}
	for _, r := range rs.capture {
		if !slices.ContainsFunc(r.tables, func(p tablePattern) bool { return p.match(table) }) {
			continue
		}
		g := Gap{Rule: r.name, Table: table, At: r.reads.at}
		for c := range r.reads.columns {
			if !have[c] {
				g.Columns = append(g.Columns, c)
			}
		}
		if t, ok := rs.catalogue[table]; ok && r.reads.rows {
			for _, c := range t.Columns {
				if !have[c.Name] && !slices.Contains(g.Columns, c.Name) {
					g.Columns = append(g.Columns, c.Name)
				}
			}
		}
		if len(g.Columns) > 0 {
			sort.Strings(g.Columns)
			if at, ok := r.reads.columns[g.Columns[0]]; ok {
				g.At = at
			}
		}
		g.Retyped = r.retyped
		if len(g.Columns) > 0 || g.Retyped != "" {
			out = append(out, g)
		}
	}
	return out
}

// Columns returns the columns table ("schema.table") had in the Catalogue
// the set was loaded against, nil when it was not in it.
func (rs *RuleSet) Columns(table string) []string {
	t, ok := rs.catalogue[table]
	if !ok {
		return nil
	}
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}
