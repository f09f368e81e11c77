package contract

import (
	"encoding/json"
)

// DecodeJSON decodes a stored event's data or metadata the way promotion
// rules see it: objects as map[string]any, arrays as []any, integral
// numbers that fit as int64 (so ids keep every digit) and other numbers as
// float64. It is the one reader of stored events' JSON.
func DecodeJSON(b []byte) (any, error) {
	v, err := ReadJSON(b) // at any depth
	if err != nil {
		return nil, err
	}
	return Normalize(v), nil
}

// Normalize converts json.Number values (recursively) to int64 when integral
// and in range, else float64, leaving other values as they are.
func Normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
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
