package mapping

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

type parserSyntaxError = yaml.SyntaxError

const numOps = int(contract.OpMessage) + 1

// captureRule is one compiled capture rule.
type captureRule struct {
	idx       int
	name      string
	tables    []tablePattern
	ops       [numOps]bool
	prefix    string // message rules: the message prefix must start with it
	when      *expression
	category  string
	id        *expression
	typ       string
	data      *template
	metadata  *template
	unchanged contract.UnchangedPolicy
	reads     reads
	// retyped is set when the rule loaded under Options.Drift only with its
	// table's columns typed any (retypedCapture): the type problem it has
	// against the columns now, as file:line:col: message.
	retyped string
}

type tablePattern struct {
	pattern string // "schema.table", may hold path.Match globs
	glob    bool
}

func (p tablePattern) match(qualified string) bool {
	if !p.glob {
		return p.pattern == qualified
	}
	ok, _ := path.Match(p.pattern, qualified)
	return ok
}

var captureFields = []string{"name", "description", "table", "on", "prefix", "when", "stream", "type", "data", "metadata", "unchanged"}

// categoryProblem says what is wrong with a stream category, "" when
// nothing is: a category is the part of a stream name before the first '-'
// (KurrentDB's $by_category projection splits there), so it holds letters,
// digits, '_', '.' and ':' only, and it may not start with '$', which marks
// KurrentDB's system streams.
func categoryProblem(s string) (msg, hint string) {
	if s == "" {
		return "category is empty", "name the entity, e.g. customer"
	}
	if s[0] == '$' {
		return fmt.Sprintf("category %q starts with '$', which marks KurrentDB system streams", s),
			fmt.Sprintf("drop the '$' (category: %s); Chronicler writes only user streams", strings.TrimLeft(s, "$"))
	}
	var bad []string
	for _, r := range s {
		if !(r == '_' || r == '.' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			q := fmt.Sprintf("%q", string(r))
			if r == ' ' {
				q = "a space"
			}
			if !slices.Contains(bad, q) {
				bad = append(bad, q)
			}
		}
	}
	if len(bad) == 0 {
		return "", ""
	}
	return fmt.Sprintf("category %q holds %s: a category may hold only letters, digits, '_', '.' and ':'", s, strings.Join(bad, ", ")),
		"the stream name is <category>-<id> and the category ends at the first '-'; write e.g. orderLine or order_line"
}

// captureBuild is one capture rule being compiled: the fields by key and
// what the earlier fields decided for the later ones.
type captureBuild struct {
	l        *loader
	name     string
	r        *captureRule
	byKey    map[string]field
	ruleNode ast.Node

	isMessage, hasRowOps, update bool
	untyped                      bool     // type the table's columns any (retypedCapture)
	tables                       []string // catalogued tables matched, for column checks
}

func (l *loader) captureRule(n ast.Node) {
	name, fs, ok := l.ruleHead(n, "capture", l.captureNames, "a capture rule", captureFields)
	if !ok {
		return
	}
	before := len(l.problems)
	r := l.buildCapture(n, name, fs, false)
	if len(l.problems) > before && l.opts.Drift {
		r = l.retypedCapture(n, name, fs, before, r)
	}
	if len(l.problems) > before {
		return
	}
	r.idx = len(l.capture)
	l.capture = append(l.capture, r)
}

// buildCapture compiles one capture rule, adding its problems to l. untyped
// compiles its expressions with its table's columns typed any
// (retypedCapture).
func (l *loader) buildCapture(n ast.Node, name string, fs []field, untyped bool) *captureRule {
	b := &captureBuild{l: l, name: name, r: &captureRule{name: name}, byKey: map[string]field{}, ruleNode: l.resolve(n), untyped: untyped}
	line, col := pos(n)
	b.r.reads = reads{columns: map[string]string{}, at: fmt.Sprintf("%s:%d:%d", l.file, line, col)}
	l.reads = &b.r.reads
	defer func() { l.reads = nil }()
	for _, f := range fs {
		b.byKey[f.key] = f
	}
	b.operations()
	b.source()
	c := b.env()
	if f, ok := b.byKey["when"]; ok {
		c.field = "when"
		if src, ok := l.scalarText(f.value); !ok {
			l.addAt(f.value, name, "when must be an expression string", "")
		} else {
			b.r.when = l.compileExpr(c, l.resolve(f.value), src, wantBool)
		}
	}
	b.stream(c)
	b.event(c)
	b.neverThere()
	return b.r
}

// retypedCapture is Options.Drift's answer to a capture rule that does not
// compile against its table's column types (a column's type changed since
// the rule was written, e.g. ALTER COLUMN qty TYPE text under new.qty * 2):
// when the rule compiles with the columns typed any, it loads with its
// first problem kept as its retyped note, so [RuleSet.Gaps] reports it and
// capture dead-letters its changes, and a restart after the change stops
// only this rule. Any other problem stays a load problem: the problems of
// the first build are put back and r is returned.
func (l *loader) retypedCapture(n ast.Node, name string, fs []field, before int, r *captureRule) *captureRule {
	typed := slices.Clone(l.problems[before:])
	l.problems = l.problems[:before]
	untyped := l.buildCapture(n, name, fs, true)
	if len(l.problems) > before {
		l.problems = append(l.problems[:before], typed...)
		return r
	}
	first := typed[0]
	first.Rule = "" // the gap names the rule
	untyped.retyped = first.String()
	return untyped
}

// operations compiles on: the operations, and whether the rule is a
// message rule or a row rule.
func (b *captureBuild) operations() {
	l, name := b.l, b.name
	f, ok := b.byKey["on"]
	if !ok {
		l.addAt(b.ruleNode, name, "missing field on", "list the operations, e.g. on: [insert, update]")
		return
	}
	ops, nodes, ok := l.strList(f, name)
	if ok {
		for i, s := range ops {
			op, valid := contract.ParseOp(s)
			if !valid {
				l.addAt(nodes[i], name, fmt.Sprintf("unknown operation %q", s), "use insert, update, delete, truncate, snapshot or message")
				continue
			}
			b.r.ops[op] = true
			if op == contract.OpMessage {
				b.isMessage = true
			} else {
				b.hasRowOps = true
			}
			b.update = b.update || op == contract.OpUpdate
		}
	}
	if b.isMessage && b.hasRowOps {
		l.addAt(f.value, name, "a rule cannot mix message with row operations", "split it into a message rule and a table rule")
	}
}

// source compiles table: (row rules) or prefix: (message rules), and finds
// the catalogued tables the patterns match.
func (b *captureBuild) source() {
	l, name, r := b.l, b.name, b.r
	if f, ok := b.byKey["table"]; ok {
		if b.isMessage {
			l.addAt(f.keyN, name, "message rules have no table", "use prefix: to select messages")
		}
		pats, nodes, ok := l.strList(f, name)
		if ok {
			for i, p := range pats {
				tp, err := parseTablePattern(p)
				if err != nil {
					l.addAt(nodes[i], name, err.Error(), "write schema.table, with * ? [..] globs if needed, e.g. public.order_*")
					continue
				}
				r.tables = append(r.tables, tp)
			}
		}
		if l.opts.Catalogue != nil {
			b.tables = []string{}
			for _, tp := range r.tables {
				n0 := len(b.tables)
				for qt := range l.opts.Catalogue {
					if tp.match(qt) {
						b.tables = append(b.tables, qt)
					}
				}
				if len(b.tables) == n0 && !tp.glob {
					l.addAt(f.value, name, fmt.Sprintf("table %s is not in the database", tp.pattern), "check the name, the schema, and that the capture publication includes it")
				}
			}
			sortStrings(b.tables)
		}
	} else if b.hasRowOps {
		l.addAt(b.ruleNode, name, "missing field table", "name the table, e.g. table: public.customers")
	}
	if f, ok := b.byKey["prefix"]; ok {
		if !b.isMessage {
			l.addAt(f.keyN, name, "prefix applies only to message rules", "add on: [message] or remove prefix")
		}
		r.prefix, _ = l.scalarText(f.value)
	}
}

// env is the expressions' environment: typed columns when the rule matches
// exactly one catalogued table.
func (b *captureBuild) env() exprCtx {
	cols := anyMap
	if len(b.tables) == 1 {
		cols = typesMapFor(b.l.opts.Catalogue[b.tables[0]], b.untyped)
	}
	c := exprCtx{rule: b.name, env: captureEnv(cols), tables: b.tables, update: b.update}
	if len(b.r.tables) > 0 && len(b.tables) == 0 {
		c.tables = nil // glob matched nothing in the catalogue: nothing to check against
	}
	return c
}

// stream compiles stream: {category, id}.
func (b *captureBuild) stream(c exprCtx) {
	l, name, r := b.l, b.name, b.r
	f, ok := b.byKey["stream"]
	if !ok {
		l.addAt(b.ruleNode, name, "missing field stream", "e.g. stream: {category: customer, id: new.id}")
		return
	}
	sfs, ok := l.fields(f.value, name, "stream", []string{"category", "id"})
	if !ok {
		return
	}
	var haveCat, haveID bool
	for _, sf := range sfs {
		switch sf.key {
		case "category":
			haveCat = true
			if s, ok := l.str(sf, name); ok {
				if msg, hint := categoryProblem(s); msg != "" {
					l.addAt(sf.value, name, "stream "+msg, hint)
				}
				r.category = s
			}
		case "id":
			haveID = true
			c.field = "stream.id"
			if src, ok := l.scalarText(sf.value); ok {
				r.id = l.compileExpr(c, l.resolve(sf.value), src, wantText)
			} else {
				l.addAt(sf.value, name, "stream.id must be an expression string", "e.g. id: new.id")
			}
		}
	}
	if !haveCat {
		l.addAt(f.value, name, "stream needs a category", "e.g. stream: {category: customer, id: new.id}")
	}
	if !haveID {
		l.addAt(f.value, name, "stream needs an id", "e.g. stream: {category: customer, id: new.id}")
	}
}

// event compiles type, data, metadata and unchanged.
func (b *captureBuild) event(c exprCtx) {
	l, name, r := b.l, b.name, b.r
	if f, ok := b.byKey["type"]; ok {
		r.typ, _ = l.str(f, name)
	} else {
		l.addAt(b.ruleNode, name, "missing field type", "name the event type, e.g. type: CustomerEmailChanged")
	}
	if f, ok := b.byKey["data"]; ok {
		r.data = l.compileTemplate(c, f.value, "data")
	} else {
		l.addAt(b.ruleNode, name, "missing field data", "e.g. data: new (the whole row) or data: {customerId: new.id}")
	}
	if f, ok := b.byKey["metadata"]; ok {
		if _, isMap := l.resolve(f.value).(*ast.MappingNode); !isMap {
			l.addAt(f.value, name, "metadata must be a mapping", "e.g. metadata: {tenant: new.tenant_id}")
		} else {
			r.metadata = l.compileTemplate(c, f.value, "metadata")
		}
	}
	if f, ok := b.byKey["unchanged"]; ok {
		s, _ := l.scalarText(f.value)
		p, ok := contract.UnchangedPolicies[s]
		if !ok {
			l.addAt(f.value, name, fmt.Sprintf("unknown unchanged policy %q", s), "use error (default), omit or marker")
		}
		r.unchanged = p
	}
}

// neverThere reports reads of values the rule's operations never set.
func (b *captureBuild) neverThere() {
	r, on := b.r, b.byKey["on"].value
	uses := r.uses()
	if uses&varOld != 0 && b.hasRowOps && !r.ops[contract.OpUpdate] && !r.ops[contract.OpDelete] {
		b.l.addAt(on, b.name, "the rule reads old but old is only set for update and delete", "remove the old.* references or add update/delete")
	}
	if uses&varNew != 0 && b.hasRowOps && !r.ops[contract.OpInsert] && !r.ops[contract.OpUpdate] && !r.ops[contract.OpSnapshot] {
		b.l.addAt(on, b.name, "the rule reads new but new is only set for insert, update and snapshot", "for deletes read old (needs REPLICA IDENTITY FULL for non-key columns) or key")
	}
}

func (r *captureRule) uses() uint32 {
	var u uint32
	for _, e := range []*expression{r.when, r.id} {
		if e != nil {
			u |= e.uses
		}
	}
	return u | r.data.uses() | r.metadata.uses()
}

func parseTablePattern(p string) (tablePattern, error) {
	p = strings.TrimSpace(p)
	if !strings.Contains(p, ".") {
		p = "public." + p
	}
	glob := strings.ContainsAny(p, "*?[")
	if glob {
		if _, err := path.Match(p, ""); err != nil {
			return tablePattern{}, fmt.Errorf("bad table pattern %q: %v", p, err)
		}
	}
	if strings.Count(p, ".") != 1 || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") {
		return tablePattern{}, fmt.Errorf("bad table name %q", p)
	}
	return tablePattern{pattern: p, glob: glob}, nil
}
