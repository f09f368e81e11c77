package contract

import (
	"encoding/json"
)

// DecodeJSON decodes a stored event's data or metadata the way promotion
// rules see it: objects as map[string]any, arrays as []any, numbers that
// are integers in int64's range as int64 (so ids keep every digit), and
// every other number as json.Number holding its text as stored (a decimal
// keeps every digit and its scale: AppendJSON writes it back unchanged).
// The form depends on the stored text, never on float64's precision. It
// is the one reader of stored events' JSON.
func DecodeJSON(b []byte) (any, error) {
	v, err := ReadJSON(b) // at any depth
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
		if i, err := x.Int64(); err == nil {
			return i
		}
		return x
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
