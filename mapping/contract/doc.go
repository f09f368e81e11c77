// Package change defines the decoded row change that capture produces and the
// mapping rules consume. It is the contract between capture/ and mapping/, so
// it has no dependencies on either side (nor on pglogrepl or pgx).
//
// # Values
//
// Column values in [Change.New] and [Change.Old] are drawn from a small, closed
// domain so that rules, JSON encoding and comparisons behave the same whatever
// the Postgres type was:
//
//	nil              SQL NULL
//	Unchanged        an unchanged TOASTed value the server did not send (never NULL, never "")
//	bool
//	int64            int2, int4, int8, oid
//	float64          float4, float8
//	json.Number      numeric/decimal, exact (the decimal text, no precision lost); NaN/Infinity too (not encodable)
//	string           text types, uuid, inet/cidr/macaddr, date/time/interval (Postgres text form),
//	                 enums (label), domains (as their base type)
//	time.Time        timestamp and timestamptz (timestamp without time zone in UTC)
//	[]byte           bytea
//	map[string]any,  json/jsonb (decoded JSON, not a string of JSON)
//	[]any            arrays (elements from this same domain) and JSON arrays; an array whose
//	                 lower bounds are not all 1 is map{"lowerBounds": []any{int64...}, "elements": []any}
//	Unknown          composite and types capture cannot decode: the text form, flagged
//
// The JSON writer ([AppendJSON]) gives each of them one form whatever the
// value (forms.go): a json.Number its exact text at any magnitude (NaN and
// ±Infinity are refused with [ErrNotEncodable], never written as strings), a
// time.Time RFC 3339 in UTC with a year outside 0000-9999 in the expanded
// form ("+010000-01-01T00:00:00Z"), []byte base64. [ReadJSON] reads JSON at
// any depth (encoding/json stops at 10,000 levels).
//
// # Positions
//
// Every change carries its transaction's identity ([Tx]: xid, commit LSN, commit
// time) and its ordinal within the transaction. Ordinals start at 0 and count
// every change pgoutput delivers in the transaction, in order, so (commit LSN,
// ordinal) identifies a change across re-deliveries of the same transaction.
package contract
