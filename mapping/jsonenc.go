package mapping

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/chronicler-dev/chronicler/capture/change"
)

// unchangedPolicy says what an output does with an unchanged TOAST value
// (rule field `unchanged`).
type unchangedPolicy uint8

const (
	unchangedError  unchangedPolicy = iota // default: the rule fails with ErrUnchangedValue
	unchangedOmit                          // drop the map key / list element
	unchangedMarker                        // write {"$unchanged":true}
)

var unchangedPolicies = map[string]unchangedPolicy{"error": unchangedError, "omit": unchangedOmit, "marker": unchangedMarker}

func isUnchanged(v any) bool { return change.IsUnchanged(v) }

// appendJSON appends the JSON encoding of a value from the change value domain
// (or an expression result) to buf. Map keys are sorted, so the output is
// deterministic.
func appendJSON(buf []byte, v any, pol unchangedPolicy) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case string:
		return appendJSONString(buf, x), nil
	case bool:
		return strconv.AppendBool(buf, x), nil
	case int64:
		return strconv.AppendInt(buf, x, 10), nil
	case int:
		return strconv.AppendInt(buf, int64(x), 10), nil
	case float64:
		return appendFloat(buf, x)
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil && x != "" {
			// NaN / Infinity as numeric: keep the text.
			return appendJSONString(buf, string(x)), nil
		}
		if x == "" {
			return append(buf, '0'), nil
		}
		return append(buf, x...), nil
	case time.Time:
		buf = append(buf, '"')
		buf = x.UTC().AppendFormat(buf, time.RFC3339Nano)
		return append(buf, '"'), nil
	case []byte:
		buf = append(buf, '"')
		buf = base64.StdEncoding.AppendEncode(buf, x)
		return append(buf, '"'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k, e := range x {
			if pol == unchangedOmit && isUnchanged(e) {
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
			buf = appendJSONString(buf, k)
			buf = append(buf, ':')
			var err error
			if buf, err = appendJSON(buf, x[k], pol); err != nil {
				return buf, fmt.Errorf("key %q: %w", k, err)
			}
		}
		return append(buf, '}'), nil
	case []any:
		buf = append(buf, '[')
		first := true
		for i, e := range x {
			if pol == unchangedOmit && isUnchanged(e) {
				continue
			}
			if !first {
				buf = append(buf, ',')
			}
			first = false
			var err error
			if buf, err = appendJSON(buf, e, pol); err != nil {
				return buf, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return append(buf, ']'), nil
	case change.Unknown:
		return appendJSONString(buf, x.Text), nil
	case *change.Unknown:
		return appendJSONString(buf, x.Text), nil
	}
	if isUnchanged(v) {
		if pol == unchangedMarker {
			return append(buf, `{"$unchanged":true}`...), nil
		}
		return buf, ErrUnchangedValue
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(buf, rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(buf, rv.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return appendFloat(buf, rv.Float())
	case reflect.String:
		return appendJSONString(buf, rv.String()), nil
	case reflect.Slice, reflect.Array:
		buf = append(buf, '[')
		for i := 0; i < rv.Len(); i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendJSON(buf, rv.Index(i).Interface(), pol); err != nil {
				return buf, err
			}
		}
		return append(buf, ']'), nil
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			m := make(map[string]any, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				m[it.Key().String()] = it.Value().Interface()
			}
			return appendJSON(buf, m, pol)
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

// appendJSONString appends s as a JSON string (invalid UTF-8 becomes U+FFFD).
func appendJSONString(buf []byte, s string) []byte {
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
