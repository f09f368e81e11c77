package pgvalue

import (
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// FuzzDecodeText feeds arbitrary text to the decoder of each built-in kind
// and array type: it must return a value or a *DecodeError, never panic.
func FuzzDecodeText(f *testing.F) {
	oids := []uint32{
		pgtype.BoolOID, pgtype.Int8OID, pgtype.Float8OID, pgtype.NumericOID, pgtype.TextOID,
		pgtype.ByteaOID, pgtype.JSONBOID, pgtype.TimestampOID, pgtype.TimestamptzOID,
		pgtype.Int4ArrayOID, pgtype.TextArrayOID, pgtype.JSONBArrayOID, pgtype.TimestamptzArrayOID,
		pgtype.ByteaArrayOID, pgtype.NumericArrayOID,
	}
	for i, seed := range []string{"t", "42", "1e10", "-1.50", "", `\x0aff`, `{"a":[1]}`,
		"2024-01-01 00:00:00", "2024-01-01 00:00:00+01", "{1,NULL,{2}}", `{"a\"b",NULL}`,
		`[1:2]={"{}"}`, `{"2024-01-01 00:00:00+00"}`, `{"\\x00"}`, "{NaN,1}"} {
		f.Add(uint8(i), seed)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, which uint8, text string) {
		typ, ok := Builtin(oids[int(which)%len(oids)])
		if !ok {
			t.Fatal("missing builtin")
		}
		_, _ = d.Decode(typ, []byte(text))
	})
}
