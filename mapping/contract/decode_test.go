package contract

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeJSONKeepsNumbersExact: integers in int64's range decode as
// int64, every other number as json.Number with its stored text, and
// AppendJSON writes the decoded value back byte for byte.
func TestDecodeJSONKeepsNumbersExact(t *testing.T) {
	const in = `{"a":[3.14159265358979323846264338327950288419,99999999999999999999.9999999999,12.3400,-9223372036854775808,` +
		`9223372036854775808,2.5,0.1,1E-7,7]}`
	v, err := DecodeJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": []any{json.Number("3.14159265358979323846264338327950288419"), json.Number("99999999999999999999.9999999999"),
		json.Number("12.3400"), int64(-9223372036854775808), json.Number("9223372036854775808"), json.Number("2.5"),
		json.Number("0.1"), json.Number("1E-7"), int64(7)}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("decoded %#v\nwant %#v", v, want)
	}
	out, err := AppendJSON(nil, v, UnchangedError)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("written back %s\nwant %s", out, in)
	}
}
