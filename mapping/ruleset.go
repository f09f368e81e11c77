package mapping

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/expr-lang/expr/vm"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// RuleSet is a compiled, immutable set of capture and promotion rules. It is
// safe for concurrent use by any number of goroutines.
type RuleSet struct {
	files   []string
	capture []*captureRule
	promote []*promoteRule

	// Capture index: exact table rules by table, glob rules scanned once per
	// distinct table, message rules by prefix scan.
	exact       map[string][]*captureRule
	globs       []*captureRule
	messages    []*captureRule
	captureUses uint32
	tableMu     sync.Mutex                               // serialises cache writers
	tableCache  atomic.Pointer[map[tableKey]*tableRules] // copy on write; readers never lock

	// Promotion index: rules by (type, category), resolved once per pair.
	eventRules  []*promoteRule // scope: event
	txRules     []*promoteRule // scope: transaction
	promoteUses uint32
	promMu      sync.Mutex
	promCache   atomic.Pointer[map[typeCat][]*promoteRule]

	// catalogue is the Catalogue the set was loaded against (read only),
	// for Gaps.
	catalogue Catalogue
}

type tableKey struct{ schema, table string }

type typeCat struct{ typ, category string }

// tableRules holds the capture rules of one table, per operation, in rule
// order, and the table's names boxed once for the expression environment.
type tableRules struct {
	byOp   [numOps][]*captureRule
	table  any // "schema.table"
	schema any
}

// maxCacheEntries bounds the lookup caches; past it lookups are computed
// each time (correct, slower) instead of growing without limit.
const maxCacheEntries = 1 << 14

func newRuleSet(files []string, capture []*captureRule, promote []*promoteRule) *RuleSet {
	rs := &RuleSet{files: files, capture: capture, promote: promote, exact: map[string][]*captureRule{}}
	for _, r := range capture {
		rs.captureUses |= r.uses()
		if r.ops[numOps-1] { // message
			rs.messages = append(rs.messages, r)
			continue
		}
		glob := false
		for _, t := range r.tables {
			glob = glob || t.glob
		}
		if glob {
			rs.globs = append(rs.globs, r)
			continue
		}
		for _, t := range r.tables {
			rs.exact[t.pattern] = append(rs.exact[t.pattern], r)
		}
	}
	for _, r := range promote {
		rs.promoteUses |= r.uses()
		if r.tx {
			rs.txRules = append(rs.txRules, r)
		} else {
			rs.eventRules = append(rs.eventRules, r)
		}
	}
	empty := map[tableKey]*tableRules{}
	rs.tableCache.Store(&empty)
	emptyP := map[typeCat][]*promoteRule{}
	rs.promCache.Store(&emptyP)
	return rs
}

// Files returns the rule files the set was loaded from, sorted.
func (rs *RuleSet) Files() []string { return append([]string(nil), rs.files...) }

// CaptureRules returns the names of the capture rules in rule order.
func (rs *RuleSet) CaptureRules() []string {
	out := make([]string, len(rs.capture))
	for i, r := range rs.capture {
		out[i] = r.name
	}
	return out
}

// PromotionRules returns the names of the promotion rules in rule order.
func (rs *RuleSet) PromotionRules() []string {
	out := make([]string, len(rs.promote))
	for i, r := range rs.promote {
		out[i] = r.name
	}
	return out
}

// Topics returns the distinct Kafka topics the promotion rules write to, in
// rule order (a rule's topic is a literal, checked at load).
func (rs *RuleSet) Topics() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rs.promote {
		if !seen[r.topic] {
			seen[r.topic] = true
			out = append(out, r.topic)
		}
	}
	return out
}

// TablePatterns returns the distinct table names and globs the capture rules
// match ("public.customers", "public.order_*"), sorted, so capture can check
// its publication covers them.
func (rs *RuleSet) TablePatterns() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs.capture {
		for _, t := range r.tables {
			if !seen[t.pattern] {
				seen[t.pattern] = true
				out = append(out, t.pattern)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Handles reports whether a capture rule matches table ("schema.table") on
// op (capture asks which added tables have snapshot rules).
func (rs *RuleSet) Handles(table string, op contract.Op) bool {
	schema, name, ok := strings.Cut(table, ".")
	if !ok || op <= 0 || int(op) >= numOps {
		return false
	}
	return len(rs.rulesFor(schema, name).byOp[op]) > 0
}

// rulesFor returns the capture rules of a table, resolving globs once per
// distinct table.
func (rs *RuleSet) rulesFor(schema, table string) *tableRules {
	k := tableKey{schema, table}
	if tr, ok := (*rs.tableCache.Load())[k]; ok {
		return tr
	}
	qt := schema + "." + table
	tr := &tableRules{table: qt, schema: schema}
	// Merge exact and glob rules back into rule order.
	var rules []*captureRule
	rules = append(rules, rs.exact[qt]...)
	for _, r := range rs.globs {
		for _, t := range r.tables {
			if t.match(qt) {
				rules = append(rules, r)
				break
			}
		}
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].idx < rules[j].idx })
	for i, r := range rules {
		if i > 0 && rules[i-1] == r {
			continue // listed twice (exact and glob of one rule)
		}
		for op := range numOps {
			if r.ops[op] {
				tr.byOp[op] = append(tr.byOp[op], r)
			}
		}
	}
	rs.tableMu.Lock()
	defer rs.tableMu.Unlock()
	old := *rs.tableCache.Load()
	if len(old) >= maxCacheEntries {
		return tr
	}
	next := make(map[tableKey]*tableRules, len(old)+1)
	for k2, v := range old {
		next[k2] = v
	}
	next[k] = tr
	rs.tableCache.Store(&next)
	return tr
}

// evaluator is the per-call scratch state: a VM and an environment map,
// pooled so evaluation does not allocate them per input.
type evaluator struct {
	vm    vm.VM
	env   map[string]any
	event map[string]any // Promote's `event`, refilled per event (see eventEnvInto)
	buf   []byte
}

var evaluators = sync.Pool{New: func() any { return &evaluator{env: make(map[string]any, 16)} }}

func getEvaluator() *evaluator { return evaluators.Get().(*evaluator) }

func putEvaluator(e *evaluator) {
	clear(e.env)
	clear(e.event)
	if cap(e.buf) > 64<<10 {
		e.buf = nil
	}
	evaluators.Put(e)
}

func (e *evaluator) run(x *expression) (any, error) { return e.vm.Run(x.prog, e.env) }

// when runs a rule's when: true when the rule applies (no when, or it gave
// true). A result that is not a boolean is an ErrResultType error.
func (e *evaluator) when(x *expression) (bool, error) {
	if x == nil {
		return true, nil
	}
	v, err := e.run(x)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%w: when returned %T, want bool", ErrResultType, v)
	}
	return b, nil
}
