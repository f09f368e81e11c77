package pgvalue

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

func builtin(t *testing.T, oid uint32) *Type {
	t.Helper()
	typ, ok := Builtin(oid)
	if !ok {
		t.Fatalf("no builtin type for oid %d", oid)
	}
	return typ
}

// TestDecodeBuiltins checks each decoding rule of the package doc on the text
// Postgres prints for that type.
func TestDecodeBuiltins(t *testing.T) {
	ts := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	cases := []struct {
		oid  uint32
		text string
		want any
	}{
		{pgtype.BoolOID, "t", true},
		{pgtype.BoolOID, "f", false},
		{pgtype.Int2OID, "-32768", int64(-32768)},
		{pgtype.Int8OID, "9223372036854775807", int64(math.MaxInt64)},
		{pgtype.Float8OID, "1.5e+300", 1.5e300},
		{pgtype.Float4OID, "-0.25", -0.25},
		{pgtype.NumericOID, "12345678901234567890.000000000000000001", json.Number("12345678901234567890.000000000000000001")},
		{pgtype.NumericOID, "-0.5", json.Number("-0.5")},
		{pgtype.NumericOID, "NaN", json.Number("NaN")},
		{pgtype.NumericOID, "-Infinity", json.Number("-Infinity")},
		{pgtype.TextOID, "", ""},
		{pgtype.BPCharOID, "ab  ", "ab  "},
		{pgtype.UUIDOID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{pgtype.ByteaOID, `\x00ff10`, []byte{0, 0xff, 0x10}},
		{pgtype.ByteaOID, `\x`, []byte{}},
		{pgtype.JSONBOID, `{"a": [1, 2.50, "x", null, true]}`, map[string]any{"a": []any{json.Number("1"), json.Number("2.50"), "x", nil, true}}},
		{pgtype.JSONOID, `"s"`, `"s"`},
		// json is its text: key order, duplicate keys, spacing and a JSON
		// null all kept.
		{pgtype.JSONOID, `{"b": 1, "a": 2, "b": 3}`, `{"b": 1, "a": 2, "b": 3}`},
		{pgtype.JSONOID, `null`, `null`},
		{pgtype.JSONArrayOID, `{"{\"b\": 1, \"a\": 2}",NULL}`, []any{`{"b": 1, "a": 2}`, nil}},
		{pgtype.TimestampOID, "2024-02-29 13:14:15.123456", ts},
		{pgtype.TimestamptzOID, "2024-02-29 15:14:15.123456+02", ts},
		{pgtype.TimestamptzOID, "infinity", "infinity"},
		{pgtype.DateOID, "2024-02-29", "2024-02-29"},
		{pgtype.IntervalOID, "1 year 2 mons 3 days 04:05:06", "1 year 2 mons 3 days 04:05:06"},
		{pgtype.InetOID, "10.1.2.3/8", "10.1.2.3/8"},
		{pgtype.Int4ArrayOID, "{1,NULL,3}", []any{int64(1), nil, int64(3)}},
		{pgtype.Int4ArrayOID, "{}", []any{}},
		{pgtype.Int4ArrayOID, "[0:1]={7,8}", map[string]any{"lowerBounds": []any{int64(0)}, "elements": []any{int64(7), int64(8)}}},
		{pgtype.Int4ArrayOID, "[1:2]={7,8}", []any{int64(7), int64(8)}},
		{pgtype.Int4ArrayOID, "{{1,2},{3,4}}", []any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}}},
		{pgtype.TextArrayOID, `{"a,b","NULL",NULL,"q\"uote","back\\slash",""}`, []any{"a,b", "NULL", nil, `q"uote`, `back\slash`, ""}},
		{pgtype.ByteaArrayOID, `{"\\x01ff"}`, []any{[]byte{1, 0xff}}},
		{pgtype.JSONBArrayOID, `{"{\"k\": 1}"}`, []any{map[string]any{"k": json.Number("1")}}},
		{pgtype.TimestamptzArrayOID, `{"2024-02-29 13:14:15.123456+00"}`, []any{ts}},
		{pgtype.NumericArrayOID, `{1.10,NaN}`, []any{json.Number("1.10"), json.Number("NaN")}},
	}
	d := NewDecoder()
	for _, c := range cases {
		got, err := d.Decode(builtin(t, c.oid), []byte(c.text))
		if err != nil {
			t.Errorf("Decode(%d, %q): %v", c.oid, c.text, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Decode(%d, %q) = %#v; want %#v", c.oid, c.text, got, c.want)
		}
	}
}

// TestDecodeCatalogTypes covers types described from pg_type: an enum array,
// a domain over numeric, a composite, a box array (';' delimiter).
func TestDecodeCatalogTypes(t *testing.T) {
	enum := &Type{OID: 90001, Name: "mood", Kind: KindString}
	enumArr := &Type{OID: 90002, Name: "_mood", Kind: KindArray, Elem: enum}
	dom := &Type{OID: 90003, Name: "price", Kind: KindNumeric}
	comp := &Type{OID: 90004, Name: "pair", Kind: KindUnknown}
	boxArr := &Type{OID: 1020, Name: "_box", Kind: KindArray, Elem: &Type{OID: 603, Name: "box"}, Delim: ';'}
	d := NewDecoder()
	check := func(typ *Type, text string, want any) {
		t.Helper()
		got, err := d.Decode(typ, []byte(text))
		if err != nil {
			t.Fatalf("Decode(%s, %q): %v", typ.Name, text, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode(%s, %q) = %#v; want %#v", typ.Name, text, got, want)
		}
	}
	check(enumArr, "{happy,sad}", []any{"happy", "sad"})
	check(dom, "10.00", json.Number("10.00"))
	check(comp, `(1,"x y")`, contract.Unknown{TypeOID: 90004, TypeName: "pair", Text: `(1,"x y")`})
	check(boxArr, "{(1,1),(0,0);(2,2),(1,1)}", []any{
		contract.Unknown{TypeOID: 603, TypeName: "box", Text: "(1,1),(0,0)"},
		contract.Unknown{TypeOID: 603, TypeName: "box", Text: "(2,2),(1,1)"},
	})
}

// TestDecodeErrors checks that invalid text is a typed *DecodeError naming
// the type.
func TestDecodeErrors(t *testing.T) {
	d := NewDecoder()
	for _, c := range []struct {
		oid  uint32
		text string
	}{
		{pgtype.BoolOID, "yes"},
		{pgtype.Int4OID, "1.5"},
		{pgtype.NumericOID, "1.2.3"},
		{pgtype.NumericOID, ""},
		{pgtype.JSONBOID, "{"},
		{pgtype.JSONBOID, "1 2"},
		{pgtype.Int4ArrayOID, "{1,2"},
		{pgtype.Int4ArrayOID, "{1,,2}"},
		{pgtype.TimestampOID, "yesterday-ish"},
		{pgtype.ByteaOID, `\xZZ`},
	} {
		_, err := d.Decode(builtin(t, c.oid), []byte(c.text))
		var de *DecodeError
		if !errors.As(err, &de) || de.TypeOID != c.oid {
			t.Errorf("Decode(%d, %q) error = %v; want a *DecodeError for oid %d", c.oid, c.text, err, c.oid)
		}
	}
}
