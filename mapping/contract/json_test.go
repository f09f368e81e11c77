package contract

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestAppendJSONMatchesEncodingJSON: for the change value domain our encoder
// writes what encoding/json writes (sorted keys, base64 bytes, RFC 3339).
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, int64(-9007199254740993), 1.5, 1e21, 1e-7, json.Number("12.3400"), "a\"b\\c\n\t\x01\b\f<>&\u2028é",
		time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC), int(7), uint32(8), float32(0.5), []any{}, map[string]any{}, []byte{0, 1, 2, 250},
		map[string]any{"b": int64(1), "a": []any{"x", nil, map[string]any{"z": false, "y": 2.25}}},
	}
	for _, v := range values {
		got, err := AppendJSON(nil, v, UnchangedError)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		var want strings.Builder
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false) // we do not escape <, >, & (valid JSON either way)
		_ = enc.Encode(v)
		if string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("%#v:\n got %s\nwant %s", v, got, want.String())
		}
	}
	if s := AppendString(nil, "bad\xffutf8"); string(s) != `"bad\ufffdutf8"` {
		t.Errorf("invalid utf-8: %s", s)
	}
}
