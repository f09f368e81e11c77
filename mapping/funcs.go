package mapping

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/expr-lang/expr"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Helper functions available in every expression. They are pure: the same
// arguments always give the same result.
//
//	unchanged(v) bool        v is an unchanged TOAST value (contract.Unchanged)
//	coalesce(a, b, ...) any  the first argument that is neither nil nor unchanged (nil if none)
//	id(a, b, ...) string     the arguments as text joined by ":" (ints in decimal, json.Number
//	                         as written, times RFC 3339 UTC); an error for nil or unchanged
//	uuid5(a, b, ...) string  a name-based UUID (version 5) of id(a, b, ...) in Chronicler's namespace
//	snake(s), camel(s), pascal(s), kebab(s) string   case conversion ("order_lines" ↔ "orderLines"...)
//	text(v) string           v as text, like id with one argument, "" for nil
//	number(v) any            a decimal (json.Number) as int64 when integral, else float64; a list's
//	                         decimals likewise; other values unchanged (applied by itself where a rule
//	                         computes, see numbers.go)
//	fromJSON(s) any          expr's fromJSON, exact: the value s holds as capture decodes a jsonb
//	                         column (numbers json.Number with every digit, any depth); nil and
//	                         an unchanged value pass through. A json column is its text, so
//	                         fromJSON(new.doc).x reads a member of it
var helperFuncs = []expr.Option{
	expr.Function("unchanged", fnUnchanged, new(func(any) bool)),
	expr.Function("coalesce", fnCoalesce),
	expr.Function("id", fnID),
	expr.Function("uuid5", fnUUID5),
	expr.Function("text", fnText, new(func(any) string)),
	expr.Function("snake", caseFunc(toSnake), new(func(string) string)),
	expr.Function("camel", caseFunc(toCamel), new(func(string) string)),
	expr.Function("pascal", caseFunc(toPascal), new(func(string) string)),
	expr.Function("kebab", caseFunc(toKebab), new(func(string) string)),
	expr.Function("number", fnNumber, new(func(any) any)),
	expr.Function("fromJSON", fnFromJSON, new(func(any) any)),
}

// helperNames lists the helper function names (for error hints).
var helperNames = []string{"unchanged", "coalesce", "id", "uuid5", "text", "snake", "camel", "pascal", "kebab"}

func fnUnchanged(args ...any) (any, error) { return contract.IsUnchanged(args[0]), nil }

func fnFromJSON(args ...any) (any, error) {
	if args[0] == nil || contract.IsUnchanged(args[0]) {
		return args[0], nil
	}
	switch s := args[0].(type) {
	case string:
		return contract.ReadJSON([]byte(s))
	case []byte:
		return contract.ReadJSON(s)
	}
	return nil, fmt.Errorf("fromJSON takes a string holding JSON, not %T", args[0])
}

func fnCoalesce(args ...any) (any, error) {
	for _, a := range args {
		if a != nil && !contract.IsUnchanged(a) {
			return a, nil
		}
	}
	return nil, nil
}

func fnID(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("id() needs at least one argument")
	}
	if len(args) == 1 {
		return idText(args[0])
	}
	var b strings.Builder
	for i, a := range args {
		s, err := idText(a)
		if err != nil {
			return nil, fmt.Errorf("id() argument %d: %w", i+1, err)
		}
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// chroniclerNamespace is the UUID namespace of uuid5().
var chroniclerNamespace = [16]byte{0x6c, 0x8a, 0x3e, 0x1d, 0x52, 0x0b, 0x4f, 0x8e, 0x9a, 0x61, 0x0d, 0x2c, 0x77, 0x43, 0xb5, 0x10}

func fnUUID5(args ...any) (any, error) {
	name, err := fnID(args...)
	if err != nil {
		return nil, err
	}
	h := sha1.New()
	h.Write(chroniclerNamespace[:])
	h.Write([]byte(name.(string)))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return string(buf[:]), nil
}

func fnText(args ...any) (any, error) {
	if args[0] == nil {
		return "", nil
	}
	return idText(args[0])
}

// idText formats a scalar the way stream ids, keys and id() do.
func idText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int:
		return strconv.Itoa(x), nil
	case json.Number:
		return string(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case nil:
		return "", fmt.Errorf("%w: got nil (SQL NULL)", ErrResultType)
	}
	if contract.IsUnchanged(v) {
		return "", ErrUnchangedValue
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), nil
	case reflect.String:
		return rv.String(), nil
	}
	return "", fmt.Errorf("%w: %T cannot be used as text", ErrResultType, v)
}

func caseFunc(f func(string) string) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		s, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("%w: want a string, got %T", ErrResultType, args[0])
		}
		return f(s), nil
	}
}

// words splits an identifier into lower-case words at '_', '-', ' ', '.',
// and at lower→upper and acronym boundaries ("HTTPServer" → http, server).
func words(s string) []string {
	var out []string
	var cur []rune
	rs := []rune(s)
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for i, r := range rs {
		switch {
		case r == '_' || r == '-' || r == ' ' || r == '.':
			flush()
			continue
		case unicode.IsUpper(r) && len(cur) > 0:
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return out
}

func toSnake(s string) string { return strings.Join(words(s), "_") }
func toKebab(s string) string { return strings.Join(words(s), "-") }

func toPascal(s string) string {
	var b strings.Builder
	for _, w := range words(s) {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		b.WriteString(string(r))
	}
	return b.String()
}

func toCamel(s string) string {
	p := []rune(toPascal(s))
	if len(p) > 0 {
		p[0] = unicode.ToLower(p[0])
	}
	return string(p)
}
