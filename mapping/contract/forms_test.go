package contract

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestReadJSONAtAnyDepth: a value nested deeper than encoding/json's 10,000
// levels is read (by DecodeJSON's parser, with a stack of its own) to the same value a shallow one gives,
// empty and repeated keys included, and DecodeJSON (the publisher's reader)
// reads it too.
func TestReadJSONAtAnyDepth(t *testing.T) {
	for _, depth := range []int{3, 10_001, 20_000} {
		in := strings.Repeat(`{"":1,"k":[true,null,"s",2.50,{}],"a":[`, depth) + "[]" + strings.Repeat("]}", depth)
		v, err := ReadJSON([]byte(in))
		if err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		for i := 0; i < depth; i++ {
			m, ok := v.(map[string]any)
			if !ok || m[""] != json.Number("1") || !reflect.DeepEqual(m["k"], []any{true, nil, "s", json.Number("2.50"), map[string]any{}}) {
				t.Fatalf("depth %d, level %d: %#v", depth, i, v)
			}
			v = m["a"].([]any)[0]
		}
		if !reflect.DeepEqual(v, []any{}) {
			t.Fatalf("depth %d: innermost %#v", depth, v)
		}
		back, err := ReadJSON([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		out, err := AppendJSON(nil, back, UnchangedError)
		if err != nil || len(out) != len(in) {
			t.Fatalf("depth %d: written back %d bytes (%v); want %d", depth, len(out), err, len(in))
		}
		if _, err := DecodeJSON([]byte(in)); err != nil {
			t.Fatalf("depth %d: DecodeJSON: %v", depth, err)
		}
	}
	for _, bad := range []string{strings.Repeat("[", 10_001) + strings.Repeat("]", 10_000), `{"a":1} 2`, `[1,]`} {
		if _, err := ReadJSON([]byte(bad)); err == nil {
			t.Errorf("ReadJSON(%.20q...) succeeded; want an error", bad)
		}
	}
}

// TestOneJSONFormPerType: numbers are exact JSON numbers at any magnitude
// (NaN and ±Infinity refused, never strings), and times are RFC 3339
// strings in UTC, with the expanded year form outside 0000-9999.
func TestOneJSONFormPerType(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{json.Number("1e400"), "1e400"},
		{json.Number("-" + strings.Repeat("9", 500) + ".5"), "-" + strings.Repeat("9", 500) + ".5"},
		{json.Number("0.000"), "0.000"},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), `"9999-12-31T23:59:59Z"`},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), `"+010000-01-01T00:00:00Z"`},
		{time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.FixedZone("x", 3600)), `"+294276-12-31T22:59:59.999999Z"`},
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), `"0000-01-01T00:00:00Z"`},
		{time.Date(-43, 3, 15, 0, 0, 0, 0, time.UTC), `"-000043-03-15T00:00:00Z"`},
	} {
		got, err := AppendJSON(nil, c.in, UnchangedError)
		if err != nil || string(got) != c.want {
			t.Errorf("%v: %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, n := range []json.Number{"NaN", "Infinity", "-Infinity", "+1", ".5", "1."} {
		if got, err := AppendJSON(nil, n, UnchangedError); !errors.Is(err, ErrNotEncodable) {
			t.Errorf("%q: %s, %v; want ErrNotEncodable", n, got, err)
		}
	}
}
