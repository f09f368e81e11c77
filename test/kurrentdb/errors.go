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

// Error is the real server's text for a delete or tombstone
// (RpcExceptions.WrongExpectedVersion; Streams.Delete.cs names both
// operations "Delete"): expected and actual versions in the server's int64
// form, -1 no stream, -2 any, -4 stream exists.
func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("Delete failed due to WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d", e.Stream, e.Expected.Int64(), e.Current)
}

// AppendTooLargeError: the size of one append (cumulative, counted as
// eventSize does) exceeds the server's maximum append size
// (Options.MaxAppendSize).
type AppendTooLargeError struct {
	Stream string
	Max    int
}

func (e *AppendTooLargeError) Error() string {
	return fmt.Sprintf("Maximum Append Size of %d Exceeded.", e.Max)
}

// EventTooLargeError: one event of an append is over the server's maximum
// append event size (Options.MaxAppendEventSize). EventID is the event's id
// as the real server names it (see rpc_append.go).
type EventTooLargeError struct {
	EventID string
	Size    int
	Max     int
}

func (e *EventTooLargeError) Error() string {
	return fmt.Sprintf("Event with Id: %s, Size: %d, exceeds Maximum Append Event Size of %d.", e.EventID, e.Size, e.Max)
}

// MissingMetadataError: a proposed event lacks its "type" or
// "content-type" metadata.
type MissingMetadataError struct {
	Property string // the first one missing, "type" checked first
}

func (e *MissingMetadataError) Error() string {
	return fmt.Sprintf("Required Metadata Property '%s' is missing", e.Property)
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
