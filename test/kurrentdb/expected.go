package kurrentdb

import "strconv"

// ExpectedKind is the kind of expected stream revision of a write.
type ExpectedKind int

const (
	ExpectAny ExpectedKind = iota
	ExpectNoStream
	ExpectStreamExists
	ExpectRevision
)

// Expected is the expected revision of an append, delete or tombstone.
type Expected struct {
	Kind     ExpectedKind
	Revision uint64 // with ExpectRevision
}

func (e Expected) String() string {
	switch e.Kind {
	case ExpectAny:
		return "any"
	case ExpectNoStream:
		return "no_stream"
	case ExpectStreamExists:
		return "stream_exists"
	default:
		return strconv.FormatUint(e.Revision, 10)
	}
}

// Int64 is the real server's int64 form of the expected version
// (AnyStreamRevision.ToInt64): any -2, no stream -1, stream exists -4, a
// revision as itself.
func (e Expected) Int64() int64 {
	switch e.Kind {
	case ExpectAny:
		return -2
	case ExpectNoStream:
		return -1
	case ExpectStreamExists:
		return -4
	}
	if e.Revision > uint64(tombstoneRevision) {
		return tombstoneRevision
	}
	return int64(e.Revision)
}

// exact returns the expected last revision for ExpectNoStream (-1) and
// ExpectRevision, and false for the other kinds.
func (e Expected) exact() (int64, bool) {
	switch e.Kind {
	case ExpectNoStream:
		return -1, true
	case ExpectRevision:
		if e.Revision > uint64(tombstoneRevision) {
			return tombstoneRevision, true
		}
		return int64(e.Revision), true
	}
	return 0, false
}
