package pgvalue

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Decoder decodes text values by [Type]. It is not safe for concurrent use.
type Decoder struct {
	m *pgtype.Map
}

// NewDecoder returns a Decoder backed by a fresh pgtype.Map.
func NewDecoder() *Decoder { return &Decoder{m: pgtype.NewMap()} }

// Decode decodes the text form of one non-NULL value of type t. SQL NULL and
// unchanged TOAST values never reach it: the caller maps those to nil and
// [contract.Unchanged].
func (d *Decoder) Decode(t *Type, text []byte) (any, error) {
	v, err := d.decode(t, text)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, newDecodeError(t, text, err)
	}
	return v, nil
}

func (d *Decoder) decode(t *Type, text []byte) (any, error) {
	switch t.Kind {
	case KindBool:
		switch string(text) {
		case "t", "true":
			return true, nil
		case "f", "false":
			return false, nil
		}
		return nil, errors.New("not t or f")
	case KindInt:
		return strconv.ParseInt(string(text), 10, 64)
	case KindFloat:
		return strconv.ParseFloat(string(text), 64)
	case KindNumeric:
		return decodeNumeric(text)
	case KindString:
		return string(text), nil
	case KindBytea:
		var b []byte
		if err := d.m.Scan(pgtype.ByteaOID, pgtype.TextFormatCode, text, &b); err != nil {
			return nil, err
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	case KindJSON:
		return decodeJSON(text)
	case KindTimestamp:
		var ts pgtype.Timestamp
		if err := d.m.Scan(pgtype.TimestampOID, pgtype.TextFormatCode, text, &ts); err != nil {
			return parseTimestamp(text, false, err)
		}
		return timeOrInfinity(ts.Time, ts.InfinityModifier), nil
	case KindTimestamptz:
		var ts pgtype.Timestamptz
		if err := d.m.Scan(pgtype.TimestamptzOID, pgtype.TextFormatCode, text, &ts); err != nil {
			return parseTimestamp(text, true, err)
		}
		return timeOrInfinity(ts.Time, ts.InfinityModifier), nil
	case KindArray:
		if t.Elem == nil {
			return nil, errors.New("array type without an element type")
		}
		node, err := parseArray(text, t.delim())
		if err != nil {
			return nil, err
		}
		v, err := d.arrayValue(t.Elem, node)
		if err != nil || node.lower == nil {
			return v, err
		}
		return boundedArray(node.lower, v), nil
	default:
		return contract.Unknown{TypeOID: t.OID, TypeName: t.Name, Text: string(text)}, nil
	}
}

func (t *Type) delim() byte {
	if t.Delim == 0 {
		return ','
	}
	return t.Delim
}

func (d *Decoder) arrayValue(elem *Type, n arrayNode) (any, error) {
	if n.null {
		return nil, nil
	}
	if n.elems == nil && !n.array {
		return d.decode(elem, n.text)
	}
	out := make([]any, len(n.elems))
	for i, e := range n.elems {
		v, err := d.arrayValue(elem, e)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// decodeNumeric keeps a numeric's exact text as a json.Number; NaN and
// ±Infinity too (they have no JSON form: contract.AppendJSON refuses
// them, so a rule writing one is dead-lettered instead of getting a string
// where its neighbours are numbers).
func decodeNumeric(text []byte) (any, error) {
	switch s := string(text); s {
	case "NaN", "Infinity", "-Infinity":
		return json.Number(s), nil
	}
	// Validate the exact decimal text without converting it to a float.
	s := text
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	digits, dot := 0, false
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		case c == 'e' || c == 'E':
			if digits == 0 {
				return nil, errors.New("not a decimal number")
			}
			if _, err := strconv.Atoi(string(s[i+1:])); err != nil {
				return nil, errors.New("not a decimal number")
			}
			return json.Number(text), nil
		default:
			return nil, errors.New("not a decimal number")
		}
	}
	if digits == 0 {
		return nil, errors.New("not a decimal number")
	}
	if !json.Valid(text) {
		// Postgres never prints "+1" or ".5", which are not JSON numbers: a
		// decode error (delivered as contract.Unknown, counted), never a
		// string among numbers.
		return nil, errors.New("not a JSON number")
	}
	return json.Number(text), nil
}

// decodeJSON decodes jsonb at any depth (contract.ReadJSON).
func decodeJSON(text []byte) (any, error) { return contract.ReadJSON(text) }

func timeOrInfinity(t time.Time, inf pgtype.InfinityModifier) any {
	switch inf {
	case pgtype.Infinity:
		return "infinity"
	case pgtype.NegativeInfinity:
		return "-infinity"
	}
	return t.UTC()
}
