package capture

import (
	"context"
	"fmt"
	"time"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Tables is what a reload read of postgres.tables and
// postgres.add_missing_tables from the configuration file
// ([Capture.LoadRulesWith]).
type Tables struct {
	// Names is postgres.tables as the file says now ("schema.table"; a bare
	// name is "public.").
	Names []string
	// AddMissing is postgres.add_missing_tables as the file says now:
	// capture may add the new tables to the publication.
	AddMissing bool
}

// prepared is a rule set LoadRulesWith checked together with tables to
// add: SwapRules of that set adds them.
type prepared struct {
	rules *mapping.RuleSet
	src   *postgres.Source
	add   *postgres.TableAddition
}

// reloadTimeout bounds a reload's reads and statements in Postgres.
const reloadTimeout = time.Minute

// LoadRulesWith is [Capture.LoadRules] for a reload that may add tables:
// with t set, postgres.tables may list tables capture does not capture
// yet. They are checked as at start (postgres.Source.PrepareTables: the
// table checks, and the publication publishes them or may be made to;
// a table removed from the list is refused), described, and the rules
// are checked against the captured tables and them. Nothing changes
// until [Capture.SwapRules] is given the returned set.
func (c *Capture) LoadRulesWith(paths []string, t *Tables) (*mapping.RuleSet, error) {
	c.mu.Lock()
	cat, cur := c.cat, c.src
	c.mu.Unlock()
	if cat == nil {
		return nil, ErrNotRunning
	}
	var src *postgres.Source
	if cur != nil {
		src = cur.Load()
	}
	if src == nil && t != nil {
		return nil, ErrNotRunning // the source is not wired yet: tables cannot be checked
	}
	if src == nil {
		return loadRules(paths, cat, false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	var add *postgres.TableAddition
	if t != nil {
		var err error
		if add, err = src.PrepareTables(ctx, t.Names, t.AddMissing); err != nil {
			return nil, err
		}
	}
	fresh, err := src.Catalog(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the captured tables' columns for the reload: %w", err)
	}
	c.mu.Lock()
	c.cat = Catalogue(fresh)
	c.mu.Unlock()
	if add != nil {
		for _, tbl := range add.Tables {
			fresh[tbl.Name] = tbl
		}
	}
	rs, err := loadRules(paths, Catalogue(fresh), false)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.prepared = nil
	if add != nil && len(add.Tables) > 0 {
		c.prepared = &prepared{rules: rs, src: src, add: add}
	}
	c.mu.Unlock()
	return rs, nil
}

// addTables carries out the table addition prepared with rs, if any,
// after rs was handed to the pipeline: the source adds the tables to the
// publication and its captured set, and requests a snapshot of those with
// snapshot rules in rs.
func (c *Capture) addTables(rs *mapping.RuleSet) error {
	c.mu.Lock()
	p := c.prepared
	c.prepared = nil
	c.mu.Unlock()
	if p == nil || p.rules != rs {
		return nil
	}
	var snapshot []string
	for _, name := range p.add.Names() {
		if rs.Handles(name, contract.OpSnapshot) {
			snapshot = append(snapshot, name)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
	defer cancel()
	if _, err := p.src.AddTables(ctx, p.add, snapshot); err != nil {
		return fmt.Errorf("the new rules are in force, but %s could not be added: %w", p.add.Names(), err)
	}
	return nil
}
