package store

import (
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// ErrClosed is returned by Add and Commit after Run has returned.
var ErrClosed = errors.New("store appender is not running")

// ConflictError reports a write to a Chronicler stream by someone else: the
// expected revision did not hold, or the stream's last event is not one of
// this slot's.
type ConflictError struct {
	Stream   string
	Expected int64 // revision the appender expected (-1: no stream)
	Actual   int64 // revision found (-1: unknown)
	Reason   string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("stream %s was written by someone else (%s; expected revision %d, found %d): Chronicler must be the only writer of its streams; find the writer, or set store.on_conflict: reread to append after its events",
		e.Stream, e.Reason, e.Expected, e.Actual)
}

// TooLargeError is returned by Add for an event that cannot fit one append.
type TooLargeError struct {
	Stream string
	Size   int
	Limit  int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("event for stream %s is %d bytes, over the %d-byte append limit (store.max_batch_bytes, bounded by the server's maximum append size)", e.Stream, e.Size, e.Limit)
}

// DeletedError reports an append to a stream that was deleted or tombstoned
// in the store; Chronicler will not resurrect it silently.
type DeletedError struct {
	Stream string
	Cause  error
}

func (e *DeletedError) Error() string {
	return fmt.Sprintf("stream %s is deleted in the store: %v (recreate it deliberately, or change the rule's stream)", e.Stream, e.Cause)
}

func (e *DeletedError) Unwrap() error { return e.Cause }

// URLError: a store connection string that does not parse. It never quotes
// the string (it may hold credentials).
type URLError struct{ Reason string }

func (e *URLError) Error() string { return "store.url: " + e.Reason }

// IsWrongVersion reports whether err is the store's wrong-expected-version
// answer to an append.
func IsWrongVersion(err error) bool { return errorCode(err) == esdb.ErrorCodeWrongExpectedVersion }

// IsStreamDeleted reports whether err says the stream was deleted for good
// (tombstoned).
func IsStreamDeleted(err error) bool { return errorCode(err) == esdb.ErrorCodeStreamDeleted }

// IsAccessDenied reports whether err is the store refusing the credentials
// or the operation.
func IsAccessDenied(err error) bool {
	c := errorCode(err)
	return c == esdb.ErrorCodeAccessDenied || c == esdb.ErrorCodeUnauthenticated
}
