package contract

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// UnchangedPolicy says what AppendJSON does with an unchanged TOAST value
// ([Unchanged]; a rule's field `unchanged`).
type UnchangedPolicy uint8

// The policies.
const (
	UnchangedError  UnchangedPolicy = iota // default: fail with ErrUnchangedValue
	UnchangedOmit                          // drop the map key / list element
	UnchangedMarker                        // write {"$unchanged":true}
)

// UnchangedPolicies maps a rule file's names to the policies.
var UnchangedPolicies = map[string]UnchangedPolicy{"error": UnchangedError, "omit": UnchangedOmit, "marker": UnchangedMarker}

// Errors of AppendJSON.
var (
	// ErrUnchangedValue: an output would contain an unchanged TOAST value
	// under UnchangedError.
	ErrUnchangedValue = errors.New("output contains an unchanged TOAST value")
	// ErrNotEncodable: a value cannot be written as JSON (NaN, Inf, a
	// type outside the value domain).
	ErrNotEncodable = errors.New("value cannot be encoded as JSON")
)

// AppendJSON appends the JSON encoding of a value from the change value domain
// (or an expression result) to buf: the one JSON writer of stored events
// (rule outputs and metadata alike). The output is exactly what encoding/json
// writes with SetEscapeHTML(false) (map keys sorted, []byte as base64,
// floats in ES6 form, invalid UTF-8 as U+FFFD, U+2028/U+2029 escaped), with
// rules of its own (forms.go): a time.Time is written in UTC, RFC 3339 with
// nanoseconds (a year outside 0000-9999 in the expanded form), so a value's
// bytes never depend on the server's time zone; a json.Number is written
// as its exact text, and one that is not a JSON number (numeric NaN,
// Infinity) is refused like a float NaN.
func AppendJSON(buf []byte, v any, pol UnchangedPolicy) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case string:
		return AppendString(buf, x), nil
	case bool:
		return strconv.AppendBool(buf, x), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case float64:
		return appendFloat(buf, x)
	case json.Number:
		return appendNumber(buf, x)
	case time.Time:
		return appendTime(buf, x), nil
	case []byte:
		buf = append(buf, '"')
		buf = base64.StdEncoding.AppendEncode(buf, x)
		return append(buf, '"'), nil
	case map[string]any:
		return appendObject(buf, x, pol)
	case []any:
		return appendArray(buf, x, pol)
	case Unknown:
		return AppendString(buf, x.Text), nil
	case *Unknown:
		return AppendString(buf, x.Text), nil
	}
	if IsUnchanged(v) {
		if pol == UnchangedMarker {
			return append(buf, `{"$unchanged":true}`...), nil
		}
		return buf, ErrUnchangedValue
	}
	return appendReflected(buf, v, pol)
}

// appendObject writes m with its keys sorted.
func appendObject(buf []byte, m map[string]any, pol UnchangedPolicy) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k, e := range m {
		if pol == UnchangedOmit && IsUnchanged(e) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, k := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = AppendString(buf, k)
		buf = append(buf, ':')
		var err error
		if buf, err = AppendJSON(buf, m[k], pol); err != nil {
			return buf, fmt.Errorf("key %q: %w", k, err)
		}
	}
	return append(buf, '}'), nil
}

func appendArray(buf []byte, a []any, pol UnchangedPolicy) ([]byte, error) {
	buf = append(buf, '[')
	first := true
	for i, e := range a {
		if pol == UnchangedOmit && IsUnchanged(e) {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		var err error
		if buf, err = AppendJSON(buf, e, pol); err != nil {
			return buf, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return append(buf, ']'), nil
}

// appendReflected writes the values of other Go types: numbers and strings
// of any kind, slices, arrays and maps with string keys.
func appendReflected(buf []byte, v any, pol UnchangedPolicy) ([]byte, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(buf, rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(buf, rv.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return appendFloat(buf, rv.Float())
	case reflect.String:
		return AppendString(buf, rv.String()), nil
	case reflect.Slice, reflect.Array:
		a := make([]any, rv.Len())
		for i := range a {
			a[i] = rv.Index(i).Interface()
		}
		return appendArray(buf, a, pol)
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			m := make(map[string]any, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				m[it.Key().String()] = it.Value().Interface()
			}
			return appendObject(buf, m, pol)
		}
	}
	return buf, fmt.Errorf("%w: %T", ErrNotEncodable, v)
}

func appendFloat(buf []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return buf, fmt.Errorf("%w: %v", ErrNotEncodable, f)
	}
	// The same form as encoding/json (ES6 number to string).
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	n := len(buf)
	buf = strconv.AppendFloat(buf, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if m := len(buf) - n; m >= 4 && buf[len(buf)-4] == 'e' && buf[len(buf)-3] == '-' && buf[len(buf)-2] == '0' {
			buf[len(buf)-2] = buf[len(buf)-1]
			buf = buf[:len(buf)-1]
		}
	}
	return buf, nil
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string (invalid UTF-8 becomes U+FFFD),
// as AppendJSON writes every string.
func AppendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch b {
			case '"', '\\':
				buf = append(buf, '\\', b)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
