package mapping

import (
	"sort"

	"github.com/expr-lang/expr/types"
)

// typesMapFor returns the strict expression type of a row of table t: a map
// with exactly the table's columns, typed by their Postgres types.
func typesMapFor(t Table) types.Map {
	m := make(types.Map, len(t.Columns))
	for _, c := range t.Columns {
		m[c.Name] = pgType(c.Type)
	}
	return m
}

func sortStrings(s []string) { sort.Strings(s) }
