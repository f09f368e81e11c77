package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// One JSON form per type: a value's JSON type and form depend on its
// column type only, never on the value. The forms that need care:
//
//   - numeric: always an exact JSON number (the decimal text, every digit,
//     whatever its magnitude). NaN and ±Infinity have no JSON form: writing
//     one fails (ErrNotEncodable), as for float NaN, so a rule writing it is
//     dead-lettered rather than switching to a string.
//   - timestamp, timestamptz: RFC 3339 in UTC with nanoseconds; a year
//     outside 0000-9999 (Postgres allows 4713 BC to 294276 AD) has
//     ECMAScript's expanded form: a sign and six digits,
//     "+010000-01-01T00:00:00Z", "-000043-03-15T00:00:00Z" (44 BC is year
//     -43, as in ISO 8601). ±infinity stays the string "infinity" /
//     "-infinity".
//   - jsonb: the decoded value, at any depth. json: its text, a string
//     (key order and duplicate keys are the application's data; decoding
//     would drop them).
//   - bytea and message contents: bytes, written base64.

// appendTime writes t in UTC: RFC 3339 with nanoseconds for years
// 0000-9999, else the expanded form (see above).
func appendTime(buf []byte, t time.Time) []byte {
	t = t.UTC()
	y := t.Year()
	buf = append(buf, '"')
	if y >= 0 && y <= 9999 {
		buf = t.AppendFormat(buf, time.RFC3339Nano)
		return append(buf, '"')
	}
	sign := byte('+')
	if y < 0 {
		sign, y = '-', -y
	}
	buf = append(buf, sign)
	ys := strconv.Itoa(y)
	for range 6 - len(ys) {
		buf = append(buf, '0')
	}
	buf = append(buf, ys...)
	buf = t.AppendFormat(buf, "-01-02T15:04:05.999999999Z07:00")
	return append(buf, '"')
}

// isJSONNumber reports whether s is a JSON number literal.
func isJSONNumber(s string) bool { return numberEnd(s, 0) == len(s) }

// appendNumber writes a json.Number: its exact text, which must be a JSON
// number (numeric NaN and ±Infinity are not).
func appendNumber(buf []byte, x json.Number) ([]byte, error) {
	if x == "" {
		return append(buf, '0'), nil
	}
	if !isJSONNumber(string(x)) {
		return buf, fmt.Errorf("%w: number %q has no JSON form", ErrNotEncodable, string(x))
	}
	return append(buf, x...), nil
}

// ReadJSON decodes one JSON value with numbers as json.Number, at any
// depth: encoding/json stops at 10,000 levels, and a json or jsonb value
// (or a stored event) nested deeper is read by DecodeJSON's parser instead
// (parseJSON), which reads strings as encoding/json does. Trailing data
// after the value is an error.
func ReadJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	var se *json.SyntaxError
	if errors.As(err, &se) && strings.Contains(se.Error(), "exceeded max depth") {
		v, at, ok := parseJSON(b, jsonNumber)
		if !ok {
			return nil, fmt.Errorf("decoding JSON: invalid at offset %d", at)
		}
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decoding JSON: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("decoding JSON: trailing data after the value")
	}
	return v, nil
}
