package capture

import "testing"

func TestTypeName(t *testing.T) {
	for in, want := range map[string]string{
		"integer":                        "int4",
		"bigint":                         "int8",
		"numeric(10,2)":                  "numeric",
		"character varying(20)":          "varchar",
		"timestamp with time zone":       "timestamptz",
		"timestamp(3) without time zone": "timestamp",
		"text[]":                         "_text",
		"integer[]":                      "_int4",
		"public.mood":                    "mood",
		"jsonb":                          "jsonb",
		"double precision":               "float8",
	} {
		if got := typeName(in); got != want {
			t.Errorf("typeName(%q) = %q, want %q", in, got, want)
		}
	}
}
