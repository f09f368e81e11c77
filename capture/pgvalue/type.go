package pgvalue

import (
	"sync"

	"github.com/jackc/pgx/v5/pgtype"
)

// Kind is how a type's text is decoded.
type Kind uint8

// The kinds of decoding. The zero value decodes as [KindUnknown].
const (
	KindUnknown Kind = iota // contract.Unknown with the text
	KindBool
	KindInt
	KindFloat
	KindNumeric
	KindString // the text unchanged (json too: its text is the value, exactly)
	KindBytea
	KindJSON        // jsonb: decoded
	KindTimestamp   // timestamp without time zone, read as UTC
	KindTimestamptz // timestamp with time zone
	KindArray
)

// Type describes one Postgres type for decoding. Build it with [Builtin] or
// as a literal from pg_type; do not modify it once shared.
type Type struct {
	OID  uint32
	Name string // type name as the catalog spells it (for a domain, the domain's name)
	Kind Kind
	// Elem is the element type of an array (KindArray only).
	Elem *Type
	// Delim is the array element delimiter (pg_type.typdelim); 0 means ','.
	Delim byte
}

// builtinKinds maps the base types capture decodes natively.
var builtinKinds = map[uint32]Kind{
	pgtype.BoolOID:     KindBool,
	pgtype.Int2OID:     KindInt,
	pgtype.Int4OID:     KindInt,
	pgtype.Int8OID:     KindInt,
	pgtype.OIDOID:      KindInt,
	pgtype.Float4OID:   KindFloat,
	pgtype.Float8OID:   KindFloat,
	pgtype.NumericOID:  KindNumeric,
	pgtype.TextOID:     KindString,
	pgtype.VarcharOID:  KindString,
	pgtype.BPCharOID:   KindString,
	pgtype.NameOID:     KindString,
	pgtype.QCharOID:    KindString,
	pgtype.UUIDOID:     KindString,
	pgtype.InetOID:     KindString,
	pgtype.CIDROID:     KindString,
	pgtype.MacaddrOID:  KindString,
	pgtype.Macaddr8OID: KindString,
	pgtype.DateOID:     KindString,
	pgtype.TimeOID:     KindString,
	pgtype.TimetzOID:   KindString,
	pgtype.IntervalOID: KindString,
	pgtype.BitOID:      KindString,
	pgtype.VarbitOID:   KindString,
	pgtype.XMLOID:      KindString,
	790:                KindString, // money: its text depends on lc_monetary, so never a number
	pgtype.ByteaOID:    KindBytea,
	// json keeps its text as the application wrote it (key order,
	// duplicate keys, spacing): that text is the value, so it is a string;
	// jsonb is already normalised by Postgres, so decoding it loses nothing.
	pgtype.JSONOID:        KindString,
	pgtype.JSONBOID:       KindJSON,
	pgtype.TimestampOID:   KindTimestamp,
	pgtype.TimestamptzOID: KindTimestamptz,
}

var (
	builtinOnce  sync.Once
	builtinTypes map[uint32]*Type
)

// Builtin returns the Type of a built-in base type or array of one (from
// pgx's pgtype registry), and false for any other OID (enums, domains,
// composites, extension types: describe those from pg_type).
func Builtin(oid uint32) (*Type, bool) {
	builtinOnce.Do(loadBuiltins)
	t, ok := builtinTypes[oid]
	return t, ok
}

func loadBuiltins() {
	m := pgtype.NewMap()
	builtinTypes = map[uint32]*Type{}
	for oid, kind := range builtinKinds {
		name := "money"
		if pt, ok := m.TypeForOID(oid); ok {
			name = pt.Name
		}
		builtinTypes[oid] = &Type{OID: oid, Name: name, Kind: kind}
	}
	// Arrays of the built-in types, as pgtype knows them (elements by OID).
	for oid := uint32(1); oid < 20000; oid++ {
		pt, ok := m.TypeForOID(oid)
		if !ok {
			continue
		}
		ac, ok := pt.Codec.(*pgtype.ArrayCodec)
		if !ok || ac.ElementType == nil {
			continue
		}
		elem, ok := builtinTypes[ac.ElementType.OID]
		if !ok {
			continue
		}
		builtinTypes[oid] = &Type{OID: oid, Name: pt.Name, Kind: KindArray, Elem: elem, Delim: ','}
	}
	builtinTypes[791] = &Type{OID: 791, Name: "_money", Kind: KindArray, Elem: builtinTypes[790], Delim: ','}
}
