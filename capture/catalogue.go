package capture

import (
	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping"
)

// Catalogue converts the source's catalog into the mapping's, so rules are
// checked against the database's columns at load. Column types are pg_type
// names as the source read them by OID ("varchar", "timestamptz", "_int4").
//
// The replica identity is left unknown (""), although the source reports
// it: known, the mapping would refuse at load every rule reading old values
// of non-key columns on update of a table without REPLICA IDENTITY FULL,
// where `chronicler check` only warns (and capture warns for
// need_old_values). `chronicler check` sets it per table to find those
// rules.
func Catalogue(cat map[string]postgres.Table) mapping.Catalogue {
	out := make(mapping.Catalogue, len(cat))
	for name, table := range cat {
		t := mapping.Table{Key: table.Key(), Generated: table.Generated}
		for _, c := range table.Columns {
			t.Columns = append(t.Columns, mapping.Column{Name: c.Name, Type: c.Type, NotNull: c.NotNull || c.Key})
		}
		out[name] = t
	}
	return out
}
