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
//	json.Number      numeric/decimal, exact (the decimal text, no precision lost); NaN/Infinity as string
//	string           text types, uuid, inet/cidr/macaddr, date/time/interval (Postgres text form),
//	                 enums (label), domains (as their base type)
//	time.Time        timestamp and timestamptz (timestamp without time zone in UTC)
//	[]byte           bytea
//	map[string]any,  json/jsonb (decoded JSON, not a string of JSON)
//	[]any            arrays (elements from this same domain) and JSON arrays
//	Unknown          composite and types capture cannot decode: the text form, flagged
//
// # Positions
//
// Every change carries its transaction's identity ([Tx]: xid, commit LSN, commit
// time) and its ordinal within the transaction. Ordinals start at 0 and count
// every change pgoutput delivers in the transaction, in order, so (commit LSN,
// ordinal) identifies a change across re-deliveries of the same transaction.
package contract
