package mapping

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/expr-lang/expr"
	exprast "github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	yamlast "github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Environment variables, as bits so a rule set knows which ones its rules
// read and builds only those per input.
const (
	varNew uint32 = 1 << iota
	varOld
	varKey
	varOp
	varTable
	varSchema
	varDatabase
	varTx
	varLSN
	varOrdinal
	varMessage
	varEvent
	varEvents
	// varMetadata: the expression may read a stored event's metadata
	// (event.metadata, or an event handed on whole), so the publisher
	// must build the map (RuleSet.ReadsMetadata).
	varMetadata
)

var varBits = map[string]uint32{
	"new": varNew, "old": varOld, "key": varKey, "op": varOp, "table": varTable,
	"schema": varSchema, "database": varDatabase, "tx": varTx, "lsn": varLSN,
	"ordinal": varOrdinal, "message": varMessage, "event": varEvent, "events": varEvents,
}

var (
	anyMap    = types.Map{types.Extra: types.Any}
	timeType  = types.TypeOf(time.Time{})
	bytesType = types.TypeOf([]byte(nil))
)

// captureEnv is the typed environment of capture rule expressions; cols is
// the type of new and old (a strict map when the catalogue knows the table).
func captureEnv(cols types.Type) types.Map {
	return types.Map{
		"new": cols, "old": cols, "key": anyMap,
		"op": types.String, "table": types.String, "schema": types.String, "database": types.String,
		"tx": types.Map{
			"xid": types.Int64, "commitLsn": types.String, "commitTime": timeType, "origin": types.String,
		},
		"lsn": types.String, "ordinal": types.Int64,
		"message": types.Map{"prefix": types.String, "content": types.String, "bytes": bytesType, "transactional": types.Bool},
	}
}

var eventEnvType = types.Map{
	"id": types.String, "stream": types.String, "category": types.String, "entityId": types.String,
	"revision": types.Int64, "position": types.Int64, "type": types.String,
	"data": types.Any, "metadata": anyMap, "created": timeType,
}

// promoteEnv is the typed environment of promotion rule expressions.
func promoteEnv(tx bool) types.Map {
	if tx {
		return types.Map{"event": eventEnvType, "events": types.Array(eventEnvType)}
	}
	return types.Map{"event": eventEnvType}
}

// pgType maps a Postgres type name to the type capture decodes it to.
func pgType(name string) types.Type {
	switch strings.ToLower(name) {
	case "int2", "int4", "int8", "oid", "smallint", "integer", "bigint", "serial", "bigserial":
		return types.Int64
	case "float4", "float8", "real", "double precision":
		return types.Float64
	case "bool", "boolean":
		return types.Bool
	case "text", "varchar", "bpchar", "char", "name", "citext", "uuid", "inet", "cidr", "macaddr",
		"date", "time", "timetz", "interval", "character varying", "character", "json":
		return types.String
	case "timestamp", "timestamptz":
		return timeType
	case "bytea":
		return types.TypeOf([]byte(nil))
	}
	// numeric (json.Number), jsonb, arrays, enums, composites: any.
	return types.Any
}

// want is the kind of result a rule field accepts.
type want int

const (
	wantAny  want = iota
	wantBool      // when
	wantText      // stream ids, keys, subjects, header values: string or integer
)

// exprCtx is what the compiler needs to know about the rule around an expression.
type exprCtx struct {
	rule   string
	field  string
	env    types.Map
	tables []string // catalogued tables the rule matches (capture); nil: columns unchecked
	update bool     // the rule runs on updates (old values need REPLICA IDENTITY FULL)
}

// expression is one compiled expression.
type expression struct {
	src  string
	prog *vm.Program
	uses uint32
}

// forbidden builtins: they read the clock or the host's time zone database.
var forbidden = map[string]string{
	"now":      "now() reads the clock and rules must be deterministic; use tx.commitTime (capture) or event.created (promotion)",
	"timezone": "timezone() reads the host's time zone database; rules must be deterministic; keep times in UTC",
}

func (l *loader) compileExpr(c exprCtx, n yamlast.Node, src string, w want) *expression {
	if strings.TrimSpace(src) == "" {
		l.addAt(n, c.rule, c.field+" is an empty expression", "write an expression, e.g. new.id")
		return nil
	}
	tree, err := exprparser.Parse(src)
	if err != nil {
		l.exprProblem(c, n, src, err)
		return nil
	}
	e := &expression{src: src}
	l.noteReads(n, src, tree.Node)
	before := len(l.problems)
	l.inspectTree(c, n, src, tree.Node, e)
	if len(l.problems) > before {
		return nil
	}
	opts := make([]expr.Option, 0, len(helperFuncs)+4)
	opts = append(opts, expr.Env(c.env), expr.DisableBuiltin("now"), expr.DisableBuiltin("timezone"), expr.Patch(absentRows{}), expr.Patch(numberOperands{}))
	opts = append(opts, helperFuncs...)
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		l.exprProblem(c, n, src, err)
		return nil
	}
	e.prog = prog
	if !l.checkResultType(c, n, prog.Node().Type(), w) {
		return nil
	}
	return e
}

// inspectTree checks an expression's calls and column reads, and notes in
// e.uses the variables it reads, metadata included: events counts the uses
// of event and events, members those that only read a named member of
// them; any other use (an event passed on whole, a computed member) may
// read its metadata.
func (l *loader) inspectTree(c exprCtx, n yamlast.Node, src string, root exprast.Node, e *expression) {
	events, members := 0, 0
	exprast.Find(root, func(node exprast.Node) bool {
		switch x := node.(type) {
		case *exprast.IdentifierNode:
			e.uses |= varBits[x.Value]
			switch x.Value {
			case "event", "events":
				events++
			case "$env":
				e.uses |= varMetadata
			}
		case *exprast.CallNode:
			if id, ok := x.Callee.(*exprast.IdentifierNode); ok {
				l.checkCall(c, n, src, node, id.Value, len(x.Arguments))
			}
		case *exprast.BuiltinNode:
			l.checkCall(c, n, src, node, x.Name, len(x.Arguments))
		case *exprast.MemberNode:
			l.checkColumn(c, n, src, x)
			l.checkJSONMember(c, n, src, x)
			if p, ok := x.Property.(*exprast.StringNode); ok {
				if p.Value == "metadata" {
					e.uses |= varMetadata
				}
				if id, ok := x.Node.(*exprast.IdentifierNode); ok && (id.Value == "event" || id.Value == "events") {
					members++
				}
			}
		}
		return false
	})
	if events > members {
		e.uses |= varMetadata
	}
}

// checkResultType checks a result type known at load against what the
// field wants (an unknown one is checked at run time).
func (l *loader) checkResultType(c exprCtx, n yamlast.Node, t reflect.Type, w want) bool {
	if t == nil || t.Kind() == reflect.Interface {
		return true
	}
	switch w {
	case wantBool:
		if t.Kind() != reflect.Bool {
			l.addAt(n, c.rule, fmt.Sprintf("%s must be a boolean expression, this one returns %s", c.field, t), "compare something, e.g. new.status == \"paid\"")
			return false
		}
	case wantText:
		switch t.Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			if t != reflect.TypeOf(time.Time{}) {
				l.addAt(n, c.rule, fmt.Sprintf("%s must return a string or an integer, this expression returns %s", c.field, t), "convert it, e.g. id(new.a, new.b) or string(x)")
				return false
			}
		}
	}
	return true
}

func (l *loader) checkCall(c exprCtx, n yamlast.Node, src string, node exprast.Node, name string, args int) {
	if hint, ok := forbidden[name]; ok {
		l.addExpr(c, n, src, node.Location().From, name+"() is not allowed in rules", hint)
		return
	}
	if name == "date" && args != 2 {
		l.addExpr(c, n, src, node.Location().From, fmt.Sprintf("date() with %d argument(s) is not allowed in rules", args),
			"use date(value, layout) with an explicit layout: other forms guess layouts or load time zones from the host, so they are not deterministic")
	}
}

func (l *loader) checkColumn(c exprCtx, n yamlast.Node, src string, m *exprast.MemberNode) {
	id, ok := m.Node.(*exprast.IdentifierNode)
	if !ok || (id.Value != "new" && id.Value != "old") || c.tables == nil {
		return
	}
	prop, ok := m.Property.(*exprast.StringNode)
	if !ok {
		return
	}
	for _, qt := range c.tables {
		t := l.opts.Catalogue[qt]
		found := false
		names := make([]string, len(t.Columns))
		for i, col := range t.Columns {
			names[i] = col.Name
			found = found || col.Name == prop.Value
		}
		if !found && contains(t.Generated, prop.Value) {
			l.addExpr(c, n, src, prop.Location().From,
				fmt.Sprintf("column %q of %s is a generated column, which Postgres does not publish: capture never sees it", prop.Value, qt),
				"compute it in the rule from the columns it is generated from")
			return
		}
		if !found && l.opts.Drift {
			driftColumn(c, prop.Value)
			continue
		}
		if !found {
			hint := "columns of " + qt + ": " + strings.Join(names, ", ")
			if s := closest(prop.Value, names); s != "" {
				hint = "did you mean " + id.Value + "." + s + "? " + hint
			}
			l.addExpr(c, n, src, prop.Location().From, fmt.Sprintf("unknown column %q in table %s", prop.Value, qt), hint)
			return
		}
		if id.Value == "old" && c.update && t.ReplicaIdentity != "" && t.ReplicaIdentity != "full" && !contains(t.Key, prop.Value) {
			l.addExpr(c, n, src, prop.Location().From,
				fmt.Sprintf("old.%s is not sent on update: table %s has REPLICA IDENTITY %s", prop.Value, qt, strings.ToUpper(t.ReplicaIdentity)),
				"run ALTER TABLE "+qt+" REPLICA IDENTITY FULL, or do not read old values of non-key columns")
			return
		}
	}
}

// checkJSONMember refuses a member or element read of a json column
// (new.doc.x, old.doc["x"], new.doc[0]): the column is its text, a string,
// so the read could only fail for every change.
func (l *loader) checkJSONMember(c exprCtx, n yamlast.Node, src string, m *exprast.MemberNode) {
	col, ok := m.Node.(*exprast.MemberNode)
	if !ok || c.tables == nil {
		return
	}
	id, ok := col.Node.(*exprast.IdentifierNode)
	prop, named := col.Property.(*exprast.StringNode)
	if !ok || !named || (id.Value != "new" && id.Value != "old") {
		return
	}
	for _, qt := range c.tables {
		for _, cc := range l.opts.Catalogue[qt].Columns {
			if cc.Name == prop.Value && strings.EqualFold(cc.Type, "json") {
				ref := id.Value + "." + prop.Value
				l.addExpr(c, n, src, m.Property.Location().From,
					fmt.Sprintf("%s is a json column of %s: rules see its text as stored (a string, so that its key order and duplicate keys reach the event), which has no members", ref, qt),
					fmt.Sprintf("decode it first: fromJSON(%s) is its value, e.g. fromJSON(%s)%s; or make the column jsonb", ref, ref, memberText(m)))
				return
			}
		}
	}
}

// memberText is how a member read is written after its base: .name for a
// named one, else [...].
func memberText(m *exprast.MemberNode) string {
	if p, ok := m.Property.(*exprast.StringNode); ok && isIdent(p.Value) {
		return "." + p.Value
	}
	return "[...]"
}

// exprProblem reports a parse or type-check error of expr at its position.
func (l *loader) exprProblem(c exprCtx, n yamlast.Node, src string, err error) {
	var fe *file.Error
	if errors.As(err, &fe) {
		msg := fe.Message
		hint := "see `chronicler rules docs expressions` and `chronicler rules docs functions`"
		if strings.HasPrefix(msg, "unknown name ") {
			hint = "known names: " + envNames(c.env) + "; helper functions: " + strings.Join(helperNames, ", ")
		}
		if strings.Contains(msg, "mismatched types") {
			hint = "convert one side, e.g. string(x), int(x), or text(x)"
		}
		l.addExpr(c, n, src, fe.From, c.field+": "+msg, hint)
		return
	}
	l.addAt(n, c.rule, c.field+": "+err.Error(), "")
}

func envNames(env types.Map) string {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// addExpr adds a problem at rune offset from inside expression src held by
// YAML node n.
func (l *loader) addExpr(c exprCtx, n yamlast.Node, src string, from int, msg, hint string) {
	line, col := exprPosition(n, src, from)
	l.problems = append(l.problems, Problem{File: l.file, Line: line, Col: col, Rule: c.rule, Message: msg, Hint: hint})
}

// exprPosition maps a rune offset inside an expression to the file position.
func exprPosition(n yamlast.Node, src string, from int) (line, col int) {
	var eLine, eCol int // 0-based inside src
	i := 0
	for _, r := range src {
		if i == from {
			break
		}
		if r == '\n' {
			eLine++
			eCol = 0
		} else {
			eCol++
		}
		i++
	}
	tok := n.GetToken()
	if tok == nil || tok.Position == nil {
		return 0, 0
	}
	if lit, ok := n.(*yamlast.LiteralNode); ok {
		indent := 0
		if lit.Value != nil && lit.Value.Token != nil {
			origin := strings.TrimLeft(lit.Value.Token.Origin, "\n")
			indent = len(origin) - len(strings.TrimLeft(origin, " "))
		}
		return tok.Position.Line + 1 + eLine, indent + 1 + eCol
	}
	if eLine > 0 {
		return tok.Position.Line + eLine, eCol + 1
	}
	col = tok.Position.Column + eCol
	if tok.Type == token.DoubleQuoteType || tok.Type == token.SingleQuoteType {
		col++
	}
	return tok.Position.Line, col
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// closest returns the candidate within edit distance 2 of s, or "".
func closest(s string, candidates []string) string { return Closest(s, candidates, 2) }

// Closest returns the candidate nearest to s by edit distance (Levenshtein)
// if it is at most maxDist away, else "". The rule checker's and the config
// file's "did you mean" hints use it.
func Closest(s string, candidates []string, maxDist int) string {
	best, bestD := "", maxDist+1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// isIdent reports whether s can follow a dot in an expression.
func isIdent(s string) bool {
	for i, r := range s {
		if r != '_' && !unicode.IsLetter(r) && (i == 0 || !unicode.IsDigit(r)) {
			return false
		}
	}
	return s != ""
}
