package store

import (
	"encoding/json"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// appendMetadata appends ev's custom metadata as a JSON object to dst: the
// keys of ev.Metadata plus slot, commitLsn, ordinal, index and $causationId
// (which win over keys of the same name), sorted, so the bytes are exactly
// what encoding/json.Marshal makes of the merged map. The value types capture
// writes (string, integers, time.Time, bool, nil) are appended directly;
// anything else (a rule's own metadata may hold maps, lists, floats) and any
// string needing escapes go through encoding/json, so the output is always
// its output. It replaced json.Marshal of a merged map, which was 14% of the
// capture → store benchmark's CPU.
func appendMetadata(dst []byte, slot string, ev *Event) ([]byte, error) {
	var keyBuf [24]string
	keys := sortedKeys(keyBuf[:0], ev.Metadata)

	var lsnBuf [20]byte
	commitLSN := ev.Pos.CommitLSN.Append(lsnBuf[:0])
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendString(dst, k); err != nil {
			return nil, err
		}
		dst = append(dst, ':')
		switch k {
		case MetaSlot:
			dst, err = appendString(dst, slot)
		case MetaCommitLSN:
			dst = append(append(append(dst, '"'), commitLSN...), '"')
		case MetaOrdinal:
			dst = strconv.AppendUint(dst, ev.Pos.Ordinal, 10)
		case MetaIndex:
			dst = strconv.AppendUint(dst, uint64(ev.Pos.Index), 10)
		case MetaCausation:
			id := ChangeID(slot, ev.Pos.CommitLSN, ev.Pos.Ordinal)
			dst = append(dst, '"')
			dst = appendUUID(dst, id)
			dst = append(dst, '"')
		default:
			dst, err = appendValue(dst, ev.Metadata[k])
		}
		if err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// keyOrder is the sorted key list (the appender's keys included) of the
// last metadata encoded. Capture writes the same keys on every event, so
// checking that a map has exactly these keys replaces collecting and sorting
// them each time (a third of appendMetadata's CPU). It is immutable once
// stored; concurrent encoders may replace it.
var keyOrder atomic.Pointer[[]string]

// sortedKeys returns m's keys plus the appender's own, sorted: the cached
// order when m has exactly its keys, else a new order (in buf), cached.
func sortedKeys(buf []string, m map[string]any) []string {
	if p := keyOrder.Load(); p != nil && sameKeys(*p, m) {
		return *p
	}
	keys := buf
	for k := range m {
		if !isOwnKey(k) {
			keys = append(keys, k)
		}
	}
	keys = append(keys, MetaSlot, MetaCommitLSN, MetaOrdinal, MetaIndex, MetaCausation)
	slices.Sort(keys)
	c := slices.Clone(keys)
	keyOrder.Store(&c)
	return keys
}

// sameKeys reports whether m's keys, apart from the appender's own, are
// exactly those of keys (a sorted list that holds the appender's own).
func sameKeys(keys []string, m map[string]any) bool {
	n := 0
	for _, k := range keys {
		_, ok := m[k]
		if ok {
			n++
		} else if !isOwnKey(k) {
			return false
		}
	}
	return n == len(m)
}

// isOwnKey reports whether k is one of the keys the appender writes (they
// win over the source metadata's keys of the same name).
func isOwnKey(k string) bool {
	switch k {
	case MetaSlot, MetaCommitLSN, MetaOrdinal, MetaIndex, MetaCausation:
		return true
	}
	return false
}

// appendValue appends v as encoding/json would.
func appendValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, x)
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case time.Time:
		// time.Time.MarshalJSON: RFC 3339 with nanoseconds, quoted; it
		// refuses years outside [0, 9999], which json.Marshal reports.
		if y := x.Year(); y >= 0 && y <= 9999 {
			dst = append(dst, '"')
			dst = x.AppendFormat(dst, time.RFC3339Nano)
			return append(dst, '"'), nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// appendString appends s as a JSON string. Printable ASCII without the
// characters encoding/json escapes (", \, and its HTML escapes <, >, &) is
// copied as it is; anything else is left to encoding/json, so the escaping
// (control characters, U+2028/U+2029, invalid UTF-8) is exactly its own.
func appendString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, err := json.Marshal(s)
			if err != nil {
				return nil, err
			}
			return append(dst, b...), nil
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}

// appendUUID appends id in its canonical text form (uuid.UUID.String).
func appendUUID(dst []byte, id [16]byte) []byte {
	const hex = "0123456789abcdef"
	for i, b := range id {
		switch i {
		case 4, 6, 8, 10:
			dst = append(dst, '-')
		}
		dst = append(dst, hex[b>>4], hex[b&0x0F])
	}
	return dst
}
