package store

import (
	"context"
	"errors"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// ReadLast reads the last event of stream: nil (and no error) when the
// stream has none, does not exist or was soft-deleted. It is the one
// "last event of a stream" read: the appender's tail, progress markers,
// snapshot state and `chronicler status` all use it.
func ReadLast(ctx context.Context, db *esdb.Client, stream string) (*esdb.RecordedEvent, error) {
	rs, err := db.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		if HasCode(err, esdb.ErrorCodeResourceNotFound) {
			return nil, nil
		}
		return nil, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) || HasCode(err, esdb.ErrorCodeResourceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ev.Event, nil
}

// HasCode reports whether err is the store's error with that code.
func HasCode(err error, code esdb.ErrorCode) bool {
	return errorCode(err) == code
}

// ReadLastAll reads the last event of $all: nil when $all is empty.
func ReadLastAll(ctx context.Context, db *esdb.Client) (*esdb.RecordedEvent, error) {
	rs, err := db.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ev.OriginalEvent(), nil
}
