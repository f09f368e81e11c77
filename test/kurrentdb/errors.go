package kurrentdb

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by operations on a Server (or its store) after Close.
var ErrClosed = errors.New("kurrentdb: server closed")

// ConfigError reports one invalid field of Options. Start joins every
// ConfigError it finds with errors.Join, so a caller sees all of them at once.
type ConfigError struct {
	Field  string // e.g. "Faults.UnavailableRate"
	Reason string // what is wrong and what to do
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("kurrentdb: option %s: %s", e.Field, e.Reason)
}

// StreamDeletedError: the stream is tombstoned (any operation), or soft-deleted
// and the operation required it to exist (expected revision stream_exists).
type StreamDeletedError struct {
	Stream string
}

func (e *StreamDeletedError) Error() string {
	return fmt.Sprintf("Event stream '%s' is deleted.", e.Stream)
}

// WrongExpectedVersionError: the expected revision of an append, delete or
// tombstone did not hold. Current is the stream's last revision, -1 for no stream.
type WrongExpectedVersionError struct {
	Stream   string
	Expected Expected
	Current  int64
}

func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("wrong expected version on stream '%s': expected %s, current %d", e.Stream, e.Expected, e.Current)
}

// AppendTooLargeError: the cumulative data size of one append exceeds the
// server's maximum append size (Options.MaxAppendSize).
type AppendTooLargeError struct {
	Stream string
	Max    int
}

func (e *AppendTooLargeError) Error() string {
	return fmt.Sprintf("append to stream '%s' exceeds the maximum append size of %d bytes: split it into smaller appends", e.Stream, e.Max)
}

// StorageError: the durable log could not be written or synced. The store
// stops accepting writes after the first one (it cannot know what reached the
// disk); restart the server to replay the log.
type StorageError struct {
	Path string
	Op   string
	Err  error
}

func (e *StorageError) Error() string {
	return fmt.Sprintf("kurrentdb: %s %s: %v (the server stopped accepting writes; restart it to replay the log)", e.Op, e.Path, e.Err)
}

func (e *StorageError) Unwrap() error { return e.Err }

// LogFormatError: the file in the data directory is not a log this package
// wrote (bad header). It is never truncated or overwritten.
type LogFormatError struct {
	Path   string
	Reason string
}

func (e *LogFormatError) Error() string {
	return fmt.Sprintf("kurrentdb: %s is not a kurrentdb log (%s): point -data-dir at an empty directory or one this server wrote", e.Path, e.Reason)
}
