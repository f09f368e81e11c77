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
// without reflection, at any depth, and a malformed one (where the error
// text matters) is handed to encoding/json for its error. FuzzDecodeJSON
// holds the two to the same results.
func DecodeJSON(b []byte) (any, error) {
	if v, _, ok := parseJSON(b, number); ok {
		return v, nil
	}
	return decodeJSONStd(b)
}

// decodeJSONStd is DecodeJSON through encoding/json (ReadJSON): the
// reference the fast parser is held to and the source of its errors.
func decodeJSONStd(b []byte) (any, error) {
	v, err := ReadJSON(b)
	if err != nil {
		return nil, err
	}
	return Normalize(v), nil
}

// scalar reads the string, number, true, false or null starting with c at
// d.i.
func (d *jsonDecoder) scalar(c byte, num func(string) any) (any, bool) {
	switch {
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		text, ok := d.numText()
		if !ok {
			return nil, false
		}
		return num(text), true
	case c == 't':
		return true, d.lit("true")
	case c == 'f':
		return false, d.lit("false")
	case c == 'n':
		return nil, d.lit("null")
	}
	return nil, false
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

// jsonNumber is a JSON number's value as ReadJSON gives it: its text.
func jsonNumber(s string) any { return json.Number(s) }

// parseJSON parses one JSON document (space around it allowed), its numbers
// made by num. ok is false on anything that is not valid JSON, and at is
// then the offset where parsing stopped.
func parseJSON(b []byte, num func(string) any) (v any, at int, ok bool) {
	// One copy of the document as a string: every string without escapes
	// (most keys and values) is a slice of it, not an allocation of its own.
	d := jsonDecoder{b: b, s: string(b)}
	if v, ok = d.value(num); !ok {
		return nil, d.i, false
	}
	d.space()
	return v, d.i, d.i == len(d.b)
}

// jsonDecoder parses one JSON document, the same way at any depth: it keeps
// the open objects and arrays on a stack of its own, not the call stack,
// so nesting is bounded by memory only (a goroutine that overflows its
// stack kills the process; encoding/json stops at 10,000 levels instead).
// Its methods report ok false on anything that is not valid JSON.
type jsonDecoder struct {
	b       []byte
	s       string // b's bytes
	i       int
	scratch []byte // for strings with escapes
}

// container is an object or an array value being read.
type container struct {
	obj map[string]any // nil for an array
	arr []any
	key string // obj's pending key
}

// value reads one value (and the space before it), its numbers made by num.
func (d *jsonDecoder) value(num func(string) any) (any, bool) {
	var shallow [8]container // most documents: no allocation for the stack
	open := shallow[:0]
	for {
		d.space()
		if n := len(open); n > 0 && open[n-1].obj != nil {
			k, ok := d.key()
			if !ok {
				return nil, false
			}
			open[n-1].key = k
			d.space()
		}
		if d.i >= len(d.b) {
			return nil, false
		}
		var v any
		if c := d.b[d.i]; c == '{' || c == '[' {
			d.i++
			d.space()
			if c == '{' && !d.eat('}') {
				open = append(open, container{obj: make(map[string]any)})
				continue
			}
			if c == '[' && !d.eat(']') {
				open = append(open, container{arr: []any{}})
				continue
			}
			if c == '{' {
				v = make(map[string]any)
			} else {
				v = []any{}
			}
		} else if s, ok := d.scalar(c, num); ok {
			v = s
		} else {
			return nil, false
		}
		for { // v is complete: add it to its container, closing those that end
			n := len(open)
			if n == 0 {
				return v, true
			}
			top := &open[n-1]
			if top.obj != nil {
				top.obj[top.key] = v // a repeated key: the last value, as encoding/json
			} else {
				top.arr = append(top.arr, v)
			}
			d.space()
			if d.eat(',') {
				break
			}
			if top.obj != nil && !d.eat('}') || top.obj == nil && !d.eat(']') {
				return nil, false
			}
			if top.obj != nil {
				v = top.obj
			} else {
				v = top.arr
			}
			open = open[:n-1]
		}
	}
}

// key reads an object's key and the ':' after it.
func (d *jsonDecoder) key() (string, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	k, ok := d.str()
	if !ok {
		return "", false
	}
	d.space()
	return k, d.eat(':')
}

// after reads what follows a member or an element: a comma (more: true,
// and the space after it) or end, the object's or the array's.
func (d *jsonDecoder) after(end byte) (more, ok bool) {
	d.space()
	switch {
	case d.eat(','):
		d.space()
		return true, true
	case d.eat(end):
		return false, true
	}
	return false, false
}

func (d *jsonDecoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
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

func (d *jsonDecoder) lit(s string) bool {
	if len(d.b)-d.i < len(s) || d.s[d.i:d.i+len(s)] != s {
		return false
	}
	d.i += len(s)
	return true
}

// numText scans a number and returns its text.
func (d *jsonDecoder) numText() (string, bool) {
	end := numberEnd(d.s, d.i)
	if end < 0 {
		return "", false
	}
	text := d.s[d.i:end]
	d.i = end
	return text, true
}

// numberEnd returns where the JSON number starting at s[i] ends, -1 when
// none starts there: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func numberEnd(s string, i int) int {
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return -1
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return -1
		}
	}
	return i
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
