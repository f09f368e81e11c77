package capture

import (
	"strings"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping"
)

// Catalogue converts the source's catalog into the mapping's, so rules are
// checked against the database's columns at load. Types are given as
// format_type text ("character varying(20)", "timestamp with time zone",
// "integer[]"); the mapping wants type names ("varchar", "timestamptz",
// "_int4"): modifiers are dropped, the long SQL names shortened, arrays
// prefixed with "_". Replica identity is not known here ("").
func Catalogue(cat map[string][]postgres.Column) mapping.Catalogue {
	out := make(mapping.Catalogue, len(cat))
	for table, cols := range cat {
		t := mapping.Table{}
		for _, c := range cols {
			t.Columns = append(t.Columns, mapping.Column{Name: c.Name, Type: typeName(c.Type), NotNull: c.NotNull || c.Key})
			if c.Key {
				t.Key = append(t.Key, c.Name)
			}
		}
		out[table] = t
	}
	return out
}

var sqlNames = map[string]string{
	"smallint":                    "int2",
	"integer":                     "int4",
	"bigint":                      "int8",
	"real":                        "float4",
	"double precision":            "float8",
	"boolean":                     "bool",
	"character varying":           "varchar",
	"character":                   "bpchar",
	"timestamp without time zone": "timestamp",
	"timestamp with time zone":    "timestamptz",
	"time without time zone":      "time",
	"time with time zone":         "timetz",
	"bit varying":                 "varbit",
}

// typeName turns a format_type text into a pg_type name.
func typeName(ft string) string {
	arr := false
	for strings.HasSuffix(ft, "[]") {
		ft, arr = strings.TrimSuffix(ft, "[]"), true
	}
	// Drop modifiers: "numeric(10,2)", "timestamp(3) with time zone".
	if i := strings.IndexByte(ft, '('); i >= 0 {
		if j := strings.IndexByte(ft[i:], ')'); j >= 0 {
			ft = strings.TrimSpace(ft[:i] + ft[i+j+1:])
			ft = strings.Join(strings.Fields(ft), " ")
		}
	}
	if n, ok := sqlNames[ft]; ok {
		ft = n
	}
	// Schema-qualified or quoted user types: keep the bare name.
	if i := strings.LastIndexByte(ft, '.'); i >= 0 {
		ft = ft[i+1:]
	}
	ft = strings.Trim(ft, `"`)
	if arr {
		return "_" + ft
	}
	return ft
}
