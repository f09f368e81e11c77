package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"

	"github.com/chronicler-dev/chronicler/capture/pgvalue"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// relation is a pgoutput Relation message resolved for decoding: column
// names and decoders as of that point of the stream.
type relation struct {
	oid           uint32 // the relation's OID (snapshot windows match changes by it)
	schema, table string
	cols          []relColumn
	key           []string // primary key (else replica identity) columns, table order
}

type relColumn struct {
	name     string
	typ      *pgvalue.Type
	identity bool // part of the replica identity (pgoutput flag 1)
}

// decodeValue decodes one non-NULL text value. A value that does not parse
// as its type is delivered as contract.Unknown and counted, so bad input never
// stops the line and never disappears.
func (s *Source) decodeValue(t *pgvalue.Type, text []byte) any {
	v, err := s.dec.Decode(t, text)
	if err != nil {
		s.m.decodeFallbacks.WithLabelValues(t.Name).Inc()
		s.log.Debug("capture: value delivered as unknown", "type", t.Name, "error", err)
		return contract.Unknown{TypeOID: t.OID, TypeName: t.Name, Text: string(text)}
	}
	return v
}

// decodeTuple maps a tuple to column values. keyOnly keeps only the replica
// identity columns (an old 'K' tuple carries NULLs in the others, which are
// not the old values: they are unknown, so they are left out).
func (s *Source) decodeTuple(rel *relation, tup *pglogrepl.TupleData, keyOnly bool) (map[string]any, error) {
	if tup == nil {
		return nil, nil
	}
	if len(tup.Columns) != len(rel.cols) {
		return nil, &ProtocolError{Err: fmt.Errorf("tuple of %s.%s has %d columns, its relation message %d", rel.schema, rel.table, len(tup.Columns), len(rel.cols))}
	}
	out := make(map[string]any, len(rel.cols))
	for i, col := range tup.Columns {
		rc := rel.cols[i]
		if keyOnly && !rc.identity {
			continue
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			out[rc.name] = nil
		case pglogrepl.TupleDataTypeToast:
			out[rc.name] = contract.Unchanged
		case pglogrepl.TupleDataTypeText:
			out[rc.name] = s.decodeValue(rc.typ, col.Data)
		default:
			return nil, &ProtocolError{Err: errors.New("binary tuple data, which capture did not ask for")}
		}
	}
	return out, nil
}
