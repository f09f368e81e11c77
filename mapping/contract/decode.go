package contract

import (
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeJSON decodes a stored event's data or metadata the way promotion
// rules see it: objects as map[string]any, arrays as []any, numbers that
// are integers in int64's range as int64 (so ids keep every digit), and
// every other number as json.Number holding its text as stored (a decimal
// keeps every digit and its scale: AppendJSON writes it back unchanged).
// The form depends on the stored text, never on float64's precision. It
// is the one reader of stored events' JSON.
//
// It gives exactly the value (or the error) of encoding/json's Decoder with
// UseNumber followed by [Normalize] (decodeJSONStd), which was a fifth of
// the publisher's CPU per event in test/bench: a document is parsed once,
// without reflection, and a malformed one (where the error text matters) is
// handed to encoding/json for its error. FuzzDecodeJSON holds the two to
// the same results.
func DecodeJSON(b []byte) (any, error) {
	// One copy of the document as a string: every string without escapes
	// (most keys and values) is a slice of it, not an allocation of its own.
	d := jsonDecoder{b: b, s: string(b)}
	d.space()
	v, ok := d.value(0)
	if ok {
		d.space()
		if d.i == len(d.b) {
			return v, nil
		}
	}
	return decodeJSONStd(b)
}

// decodeJSONStd is DecodeJSON through encoding/json (ReadJSON, at any
// depth): the reference the fast parser is held to, the source of its
// errors, and the reader of documents nested deeper than maxDepth.
func decodeJSONStd(b []byte) (any, error) {
	v, err := ReadJSON(b)
	if err != nil {
		return nil, err
	}
	return Normalize(v), nil
}

// Normalize converts json.Number values (recursively) to int64 when they
// are integers in int64's range, leaving every other number as json.Number
// and other values as they are.
func Normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		return number(string(x))
	case map[string]any:
		for k, e := range x {
			x[k] = Normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = Normalize(e)
		}
		return x
	}
	return v
}

// number is a JSON number's value in the rules' domain: int64 when it
// parses as one (json.Number's Int64), else the number's text as stored.
func number(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	return json.Number(s)
}

// maxDepth bounds nesting as encoding/json does (10,000); deeper documents
// go to encoding/json for its error.
const maxDepth = 10000

// jsonDecoder parses one JSON document. Its methods report ok false on
// anything that is not valid JSON; DecodeJSON then asks encoding/json.
type jsonDecoder struct {
	b       []byte
	s       string // b's bytes
	i       int
	scratch []byte // for strings with escapes
}

// after reads what follows a member or an element: a comma (more: true,
// and the space after it) or end, the object's or the array's.
func (d *jsonDecoder) after(end byte) (more, ok bool) {
	d.space()
	if d.i >= len(d.b) {
		return false, false
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		d.space()
		return true, true
	case end:
		d.i++
		return false, true
	}
	return false, false
}

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value(depth int) (any, bool) {
	if d.i >= len(d.b) {
		return nil, false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		s, ok := d.str()
		return s, ok
	case c == '-' || c >= '0' && c <= '9':
		return d.num()
	case c == 't':
		return true, d.lit("true")
	case c == 'f':
		return false, d.lit("false")
	case c == 'n':
		return nil, d.lit("null")
	}
	return nil, false
}

func (d *jsonDecoder) lit(s string) bool {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

func (d *jsonDecoder) object(depth int) (any, bool) {
	if depth > maxDepth {
		return nil, false
	}
	d.i++ // {
	m := make(map[string]any)
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, true
	}
	for {
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, false
		}
		k, ok := d.str()
		if !ok {
			return nil, false
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, false
		}
		d.i++
		d.space()
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		m[k] = v // a repeated key: the last value, as encoding/json
		if more, ok := d.after('}'); !ok || !more {
			return m, ok
		}
	}
}

func (d *jsonDecoder) array(depth int) (any, bool) {
	if depth > maxDepth {
		return nil, false
	}
	d.i++ // [
	a := []any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return a, true
	}
	for {
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		if more, ok := d.after(']'); !ok || !more {
			return a, ok
		}
	}
}

// num scans a number (numText) and returns its value.
func (d *jsonDecoder) num() (any, bool) {
	text, ok := d.numText()
	if !ok {
		return nil, false
	}
	return number(text), true
}

// numText scans a number by JSON's grammar, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
// and returns its text.
func (d *jsonDecoder) numText() (string, bool) {
	start := d.i
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.b[d.i] == '-' {
		d.i++
	}
	if d.i >= len(d.b) {
		return "", false
	}
	if d.b[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return "", false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return "", false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return "", false
		}
	}
	return d.s[start:d.i], true
}

// str scans a string, decoding escapes and replacing invalid UTF-8 (and
// lone surrogates) by U+FFFD, as encoding/json does.
func (d *jsonDecoder) str() (string, bool) {
	d.i++ // "
	start := d.i
	// The common case: no escapes, ASCII or valid UTF-8, no control
	// characters: the bytes as they are.
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.s[start:d.i]
			d.i++
			return s, true
		case c == '\\' || c < 0x20:
			return d.strSlow(start)
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && size == 1 {
				return d.strSlow(start)
			}
			d.i += size
		}
	}
	return "", false
}

func (d *jsonDecoder) strSlow(start int) (string, bool) {
	out := append(d.scratch[:0], d.b[start:d.i]...)
	defer func() { d.scratch = out[:0] }()
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			d.i++
			if d.i >= len(d.b) {
				return "", false
			}
			e := d.b[d.i]
			d.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					// A pair makes one rune; a lone surrogate is U+FFFD
					// (and the escape after it, if any, is its own rune).
					r2 := utf8.RuneError
					if len(d.b)-d.i >= 6 && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						if s, ok := d.hex4(); ok {
							if dec := utf16.DecodeRune(r, s); dec != utf8.RuneError {
								r2 = dec
							} else {
								d.i = save
							}
						} else {
							return "", false
						}
					}
					r = r2
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", false
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			d.i += size
			out = utf8.AppendRune(out, r) // invalid UTF-8: U+FFFD per byte
		}
	}
	return "", false
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}
