package preflight

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/chronicler-dev/chronicler/capture"
	cpg "github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping"
)

// ruleFacts is the outcome of loading the rules.
type ruleFacts struct {
	set      *mapping.RuleSet // nil when they do not load
	err      error
	problems []mapping.Problem
	catalog  bool // loaded against the database's catalogue
	// oldReaders: per table, the rule problems that appear only once the
	// table's replica identity is known: rules reading old values of
	// non-key columns on update, which the identity does not send.
	oldReaders map[string][]mapping.Problem
}

// rules loads the rules as `chronicler run` does (against the catalogue
// when Postgres was reached), then once per table whose replica identity is
// not FULL with that identity made known, to find the rules that read old
// values it does not send.
func (c *checker) rules(pg *pgFacts) *ruleFacts {
	rf := &ruleFacts{oldReaders: map[string][]mapping.Problem{}}
	var cat mapping.Catalogue
	if pg != nil {
		raw := map[string]cpg.Table{}
		for _, t := range pg.tables {
			raw[t.Name] = t
		}
		cat = capture.Catalogue(raw)
		rf.catalog = true
	}
	rf.set, rf.err = mapping.Load(c.cfg.Rules.Paths, mapping.Options{Catalogue: cat})
	var le *mapping.LoadError
	if errors.As(rf.err, &le) {
		rf.problems = le.Problems
	}
	if rf.err != nil || pg == nil {
		return rf
	}
	for _, t := range pg.tables {
		if t.ReplicaIdentity == "full" {
			continue
		}
		known := make(mapping.Catalogue, len(cat))
		for k, v := range cat {
			known[k] = v
		}
		tt := known[t.Name]
		tt.ReplicaIdentity = t.ReplicaIdentity
		known[t.Name] = tt
		_, err := mapping.Load(c.cfg.Rules.Paths, mapping.Options{Catalogue: known})
		if errors.As(err, &le) {
			rf.oldReaders[t.Name] = le.Problems
		}
	}
	return rf
}

// ruleChecks reports the rules: loaded, or every problem at its
// file:line:col; and capture rules whose tables are not captured.
func (c *checker) ruleChecks(rf *ruleFacts) {
	paths := strings.Join(c.cfg.Rules.Paths, ", ")
	switch {
	case len(rf.problems) > 0:
		for _, p := range rf.problems {
			loc := p.File
			if p.Line > 0 {
				loc += fmt.Sprintf(":%d:%d", p.Line, p.Col)
			}
			found := p.Message
			if p.Rule != "" {
				found = fmt.Sprintf("rule %q: %s", p.Rule, p.Message)
			}
			fix := p.Hint
			if fix == "" {
				fix = "correct the rule file (chronicler rules check " + paths + ")"
			}
			c.add("rules "+loc, Fail, found, fix)
		}
		return
	case rf.err != nil:
		c.add("rules "+paths, Fail, rf.err.Error(), "check rules.paths")
		return
	}
	against := "without a database catalogue"
	if rf.catalog {
		against = "checked against the captured tables' columns"
	}
	c.add("rules "+paths, OK, fmt.Sprintf("%d files, %d capture rules, %d promotion rules, %s",
		len(rf.set.Files()), len(rf.set.CaptureRules()), len(rf.set.PromotionRules()), against), "")
	if !c.opts.Capture {
		return
	}
	tables := c.tables()
	for _, p := range rf.set.TablePatterns() {
		matched := false
		for _, t := range tables {
			if ok, _ := path.Match(p, t); ok {
				matched = true
			}
		}
		if !matched {
			c.add("rules table "+p, Warn, "capture rules match "+p+", which is not in postgres.tables: they never run",
				"add the table to postgres.tables (and the publication), or remove the rules")
		}
	}
}
