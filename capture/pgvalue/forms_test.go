package pgvalue

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestValueFormsDependOnTheTypeOnly: values at the edges of their types
// decode to the same Go type as their ordinary neighbours and are written
// with the same JSON type (issue 20, item 7): a numeric beyond float64's
// range is still an exact JSON number, a timestamp after 9999 (or before
// Christ) still a time written as a string, jsonb nested deeper than
// encoding/json's 10,000 levels still decoded JSON, json always its text
// (keys in order, duplicates kept), and an array whose lower bound is not 1
// keeps it.
func TestValueFormsDependOnTheTypeOnly(t *testing.T) {
	d := NewDecoder()
	write := func(oid uint32, text string) (any, string) {
		t.Helper()
		v, err := d.Decode(builtin(t, oid), []byte(text))
		if err != nil {
			t.Fatalf("Decode(%d, %.40q): %v", oid, text, err)
		}
		b, err := contract.AppendJSON(nil, v, contract.UnchangedError)
		if err != nil {
			t.Fatalf("AppendJSON(Decode(%d, %.40q)): %v", oid, text, err)
		}
		return v, string(b)
	}

	huge := "1" + strings.Repeat("0", 400) + ".5"
	for _, text := range []string{"1.5", huge, "-" + huge} {
		v, out := write(pgtype.NumericOID, text)
		if _, ok := v.(json.Number); !ok || out != text {
			t.Errorf("numeric %.20q: decoded %T, written %.30s; want json.Number written as its exact text", text, v, out)
		}
	}

	for _, c := range []struct {
		oid        uint32
		text, want string
	}{
		{pgtype.TimestampOID, "2024-02-29 13:14:15.5", `"2024-02-29T13:14:15.5Z"`},
		{pgtype.TimestampOID, "10000-01-01 00:00:00", `"+010000-01-01T00:00:00Z"`},
		{pgtype.TimestampOID, "294276-12-31 23:59:59.999999", `"+294276-12-31T23:59:59.999999Z"`},
		{pgtype.TimestamptzOID, "12345-06-07 08:09:10.25+00", `"+012345-06-07T08:09:10.25Z"`},
		{pgtype.TimestamptzOID, "10000-01-01 02:00:00+02", `"+010000-01-01T00:00:00Z"`},
		{pgtype.TimestampOID, "0044-03-15 12:00:00 BC", `"-000043-03-15T12:00:00Z"`},
		{pgtype.TimestamptzOID, "0044-03-15 12:00:00+00 BC", `"-000043-03-15T12:00:00Z"`},
		{pgtype.TimestamptzOID, "0001-01-01 00:00:00+00 BC", `"0000-01-01T00:00:00Z"`},
	} {
		v, out := write(c.oid, c.text)
		if _, ok := v.(time.Time); !ok || out != c.want {
			t.Errorf("%d %q: decoded %T, written %s; want time.Time written %s", c.oid, c.text, v, out, c.want)
		}
	}

	const depth = 10_001
	deep := strings.Repeat(`{"a":[`, depth) + "1" + strings.Repeat("]}", depth)
	if v, out := write(pgtype.JSONBOID, deep); !isMap(v) || out != deep {
		t.Errorf("jsonb nested %d deep: decoded %T, written back differently (%d bytes, want %d)", depth, v, len(out), len(deep))
	}
	// json is its text, a string at any depth, with every key kept where
	// it was.
	for _, text := range []string{deep, `{"b":1,"a":2,"b":3}`, `[1]`, `1e400`} {
		v, out := write(pgtype.JSONOID, text)
		if want, _ := json.Marshal(text); v != text || out != string(want) {
			t.Errorf("json %.40q: decoded %T %.40q, written %.40s; want the text as a string", text, v, v, out)
		}
	}

	for _, c := range []struct{ text, want string }{
		{"{7,8,9}", `[7,8,9]`},
		{"[0:2]={7,8,9}", `{"elements":[7,8,9],"lowerBounds":[0]}`},
		{"[-2:-1]={7,NULL}", `{"elements":[7,null],"lowerBounds":[-2]}`},
		{"[1:2][0:1]={{1,2},{3,4}}", `{"elements":[[1,2],[3,4]],"lowerBounds":[1,0]}`},
		{"[1:1][1:2]={{1,2}}", `[[1,2]]`},
	} {
		if _, out := write(pgtype.Int4ArrayOID, c.text); out != c.want {
			t.Errorf("int4[] %q written %s; want %s", c.text, out, c.want)
		}
	}

	// NaN has no JSON form: it stays a json.Number, and writing it fails
	// (as a float's NaN does) instead of switching to a string.
	for _, text := range []string{"NaN", "Infinity", "-Infinity"} {
		v, err := d.Decode(builtin(t, pgtype.NumericOID), []byte(text))
		if err != nil || v != json.Number(text) {
			t.Fatalf("numeric %s = %#v, %v; want json.Number", text, v, err)
		}
		if b, err := contract.AppendJSON(nil, v, contract.UnchangedError); !errors.Is(err, contract.ErrNotEncodable) {
			t.Errorf("numeric %s written as %s, %v; want ErrNotEncodable", text, b, err)
		}
	}
	if !reflect.DeepEqual(mustDecode(t, d, pgtype.TimestampOID, "infinity"), "infinity") {
		t.Error("timestamp infinity is not the string \"infinity\"")
	}
}

func mustDecode(t *testing.T, d *Decoder, oid uint32, text string) any {
	t.Helper()
	v, err := d.Decode(builtin(t, oid), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func isMap(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}
