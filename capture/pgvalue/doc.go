// Package pgvalue decodes Postgres values, in their text form as pgoutput and
// the snapshot queries deliver them, into the value domain of
// [contract.Change] (see mapping/contract's doc): nil, bool, int64, float64,
// json.Number, string, time.Time, []byte, map[string]any, []any and
// [contract.Unknown].
//
// A [Type] describes how to decode one Postgres type OID. Built-in types come
// from pgx's pgtype registry ([Builtin]); enums, domains, arrays of those and
// composites are described by the caller from pg_type (capture/postgres does
// that when a Relation message names a column type it has not seen).
//
// Text is expected in the formats a session with DateStyle=ISO,
// IntervalStyle=postgres, TimeZone=UTC, bytea_output=hex and
// extra_float_digits=3 produces; capture/postgres sets those on its
// connections, so the stream and the snapshot agree.
//
// # Decoding rules
//
//	bool                       bool
//	int2, int4, int8, oid      int64
//	float4, float8             float64 (NaN and ±Infinity as float64 too)
//	numeric                    json.Number with the exact decimal text, "NaN", "Infinity", "-Infinity" too
//	text, varchar, char, name  string
//	bytea                      []byte (pgtype's hex decoder)
//	uuid, inet, cidr, macaddr, macaddr8, date, time, timetz, interval, money, bit, varbit, xml
//	                           string, the Postgres text form unchanged
//	timestamp, timestamptz     time.Time in UTC (pgtype's text decoder; years after 9999 and BC by forms.go); ±infinity as the string "infinity"/"-infinity"
//	json                       string, the text as stored (key order, duplicate keys and spacing kept;
//	                           a JSON null is "null", not nil)
//	jsonb                      decoded JSON at any depth (map[string]any, []any, string, json.Number, bool, nil)
//	arrays                     []any of the element type's values, nested []any for more dimensions;
//	                           with lower bounds not all 1, map{"lowerBounds": [...], "elements": [...]}
//	enum                       string (the label)
//	domain                     as its base type
//	composite, anything else   contract.Unknown{TypeOID, TypeName, Text}
//
// A value that does not parse as its type returns a [*DecodeError]; callers
// decide whether to fall back to contract.Unknown (capture does, and counts it).
//
// # Concurrency
//
// A [Decoder] is not safe for concurrent use (pgtype.Map caches scan plans);
// use one per goroutine. [Type] values are immutable once built and may be
// shared.
//
// # Example
//
//	d := pgvalue.NewDecoder()
//	t, _ := pgvalue.Builtin(pgtype.Int4ArrayOID)
//	v, err := d.Decode(t, []byte("{1,NULL,3}")) // []any{int64(1), nil, int64(3)}
package pgvalue
