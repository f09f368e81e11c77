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
