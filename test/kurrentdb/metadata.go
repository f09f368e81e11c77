package kurrentdb

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// streamMeta is the part of a stream's metadata ($$X, type $metadata) that
// reads and deletes need. The stored bytes are never validated or changed
// (except by soft undelete, see withTruncateBefore); unknown keys and bad
// JSON are ignored here, as the real server does.
type streamMeta struct {
	maxCount       int64      // 0 = unset
	maxAgeSeconds  int64      // 0 = unset
	truncateBefore int64      // 0 = unset; math.MaxInt64 = soft-deleted
	acl            *streamACL // "$acl" (acl.go); nil = unset
}

func (m *streamMeta) softDeleted() bool { return m != nil && m.truncateBefore == math.MaxInt64 }

func parseMeta(data []byte) *streamMeta {
	m := &streamMeta{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return m
	}
	num := func(key string) int64 {
		n, ok := obj[key].(json.Number)
		if !ok {
			return 0
		}
		v, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || v < 0 {
			return 0
		}
		return v
	}
	m.maxCount = num("$maxCount")
	m.maxAgeSeconds = num("$maxAge")
	m.truncateBefore = num("$tb")
	m.acl = aclOf(data)
	return m
}

// withTruncateBefore returns the metadata JSON with "$tb" set to tb and every
// other key kept byte for byte. Non-object JSON is returned as an object
// holding only "$tb" (the server must record the undelete somewhere).
func withTruncateBefore(data []byte, tb int64) []byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		obj = map[string]json.RawMessage{}
	}
	obj["$tb"] = json.RawMessage(strconv.FormatInt(tb, 10))
	out, err := json.Marshal(obj)
	if err != nil { // cannot happen: every value is valid JSON
		return data
	}
	return out
}
