package mapping

import (
	"sort"

	"github.com/expr-lang/expr/types"
)

// typesMapFor returns the strict expression type of a row of table t: a map
// with exactly the table's columns, typed by their Postgres types (untyped:
// every column typed any).
func typesMapFor(t Table, untyped bool) types.Map {
	m := make(types.Map, len(t.Columns))
	for _, c := range t.Columns {
		if c.NotNull && !untyped {
			m[c.Name] = pgType(c.Type)
		} else {
			m[c.Name] = types.Any // NULL is nil: no static type holds it
		}
	}
	return m
}

func sortStrings(s []string) { sort.Strings(s) }
