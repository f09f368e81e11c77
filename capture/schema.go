package capture

import (
	"fmt"
	"slices"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// tableSchema is what the pipeline knows of a captured table's columns:
// the ones its last row showed (a Relation message's, as decoded into
// New), and the capture rules that read columns it lacks.
type tableSchema struct {
	rules   *mapping.RuleSet // the set gaps was computed for
	columns []string         // sorted
	gaps    map[string]mapping.Gap
}

// schemaGaps returns the skip function for ch's rules: a rule that reads a
// column ch's table no longer has (renamed or dropped, at start or while
// running) is not evaluated, and the change is dead-lettered for it with
// mapping.ErrSchemaGap and the column named, instead of reading null. Each
// new gap is logged at ERROR once. The columns come from the change's new
// row (every column of the relation, TOAST-unchanged ones included); a
// change without one (delete, truncate) uses the last known, else the
// columns the rules were loaded against. nil when no rule is broken.
func (p *Pipeline) schemaGaps(ch *contract.Change) func(string) error {
	if ch.Op == contract.OpMessage || ch.Op == contract.OpTruncate {
		return nil
	}
	table := ch.QualifiedTable()
	if p.schema == nil {
		p.schema = map[string]*tableSchema{}
	}
	st := p.schema[table]
	// The usual change shows the columns last seen: compared without
	// building and sorting a list of them (this runs for every change).
	if st == nil || st.rules != p.rules || ch.New != nil && !sameColumns(ch.New, st.columns) {
		var cols []string
		switch {
		case ch.New != nil:
			cols = make([]string, 0, len(ch.New))
			for c := range ch.New {
				cols = append(cols, c)
			}
			slices.Sort(cols)
		case st != nil:
			cols = st.columns
		default:
			cols = p.rules.Columns(table)
			slices.Sort(cols)
		}
		next := &tableSchema{rules: p.rules, columns: cols, gaps: map[string]mapping.Gap{}}
		if cols != nil {
			for _, g := range p.rules.Gaps(table, cols) {
				next.gaps[g.Rule] = g
				if st == nil || st.gaps[g.Rule].Rule == "" || st.rules != p.rules {
					p.cfg.Logger.Error("capture: a rule no longer fits its table's columns (a column renamed or dropped, or its type changed): its changes are dead-lettered until the rule is fixed and reloaded",
						"table", table, "rule", g.Rule, "problem", g.String(), "lsn", ch.LSN.String())
				}
			}
		}
		st = next
		p.schema[table] = st
	}
	if len(st.gaps) == 0 {
		return nil
	}
	return func(rule string) error {
		if g, ok := st.gaps[rule]; ok {
			return fmt.Errorf("%w: %s", mapping.ErrSchemaGap, g)
		}
		return nil
	}
}

// sameColumns reports whether row has exactly the columns cols.
func sameColumns(row map[string]any, cols []string) bool {
	if len(row) != len(cols) {
		return false
	}
	for _, c := range cols {
		if _, ok := row[c]; !ok {
			return false
		}
	}
	return true
}
