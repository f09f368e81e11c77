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
	"unicode/utf8"
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
//   - json, jsonb: the decoded value, at any depth.
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

// isJSONNumber reports whether s is a JSON number literal:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

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
// (or a stored event) nested deeper is read by readDeep instead. Trailing
// data after the value is an error.
func ReadJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	var se *json.SyntaxError
	if errors.As(err, &se) && strings.Contains(se.Error(), "exceeded max depth") {
		return readDeep(b)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding JSON: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("decoding JSON: trailing data after the value")
	}
	return v, nil
}

// readDeep parses one JSON value with a stack of its own rather than the
// call stack, so depth is bounded by memory only. Strings with escapes (or
// invalid UTF-8) are decoded by encoding/json, so they read as they would
// at a shallower depth.
func readDeep(b []byte) (any, error) {
	type frame struct {
		obj map[string]any // nil for an array
		arr []any
		key string // obj's pending key
	}
	p := &deepParser{b: b}
	var stack []*frame
	for {
		p.space()
		if n := len(stack); n > 0 && stack[n-1].obj != nil {
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			if p.space(); !p.eat(':') {
				return nil, p.fail("':' after an object key")
			}
			stack[n-1].key = k
			p.space()
		}
		var v any
		switch {
		case p.eat('{'):
			if p.space(); !p.eat('}') {
				stack = append(stack, &frame{obj: map[string]any{}})
				continue
			}
			v = map[string]any{}
		case p.eat('['):
			if p.space(); !p.eat(']') {
				stack = append(stack, &frame{arr: []any{}})
				continue
			}
			v = []any{}
		default:
			var err error
			if v, err = p.scalar(); err != nil {
				return nil, err
			}
		}
		for { // v is complete: add it to its container, closing those that end
			if len(stack) == 0 {
				if p.space(); p.i != len(p.b) {
					return nil, errors.New("decoding JSON: trailing data after the value")
				}
				return v, nil
			}
			top := stack[len(stack)-1]
			if top.obj != nil {
				top.obj[top.key] = v
			} else {
				top.arr = append(top.arr, v)
			}
			if p.space(); p.eat(',') {
				break
			}
			if top.obj != nil && !p.eat('}') || top.obj == nil && !p.eat(']') {
				return nil, p.fail("',' or the end of the object or array")
			}
			stack = stack[:len(stack)-1]
			if top.obj != nil {
				v = top.obj
			} else {
				v = top.arr
			}
		}
	}
}

type deepParser struct {
	b []byte
	i int
}

func (p *deepParser) fail(want string) error {
	return fmt.Errorf("decoding JSON: want %s at offset %d", want, p.i)
}

func (p *deepParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *deepParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *deepParser) str() (string, error) {
	start := p.i
	if !p.eat('"') {
		return "", p.fail("a string")
	}
	plain := true
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			raw := p.b[start:p.i]
			if plain && utf8.Valid(raw) {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", fmt.Errorf("decoding JSON: %w", err)
			}
			return s, nil
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return "", p.fail("no control character in a string")
		default:
			p.i++
		}
	}
	return "", p.fail("the end of the string")
}

func (p *deepParser) scalar() (any, error) {
	for _, lit := range [...]struct {
		text string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if bytes.HasPrefix(p.b[p.i:], []byte(lit.text)) {
			p.i += len(lit.text)
			return lit.v, nil
		}
	}
	if p.i < len(p.b) && p.b[p.i] == '"' {
		return p.str()
	}
	start := p.i
	for p.i < len(p.b) && strings.IndexByte("+-.0123456789eE", p.b[p.i]) >= 0 {
		p.i++
	}
	if n := string(p.b[start:p.i]); isJSONNumber(n) {
		return json.Number(n), nil
	}
	p.i = start
	return nil, p.fail("a value")
}
