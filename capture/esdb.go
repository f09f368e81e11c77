package capture

import (
	"context"
	"errors"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// hasCode reports whether err is the store's error with that code.
func hasCode(err error, code esdb.ErrorCode) bool {
	var e *esdb.Error
	return errors.As(err, &e) && e.Code() == code
}

// lastEvent reads the last event of stream; nil (and no error) when the
// stream has none or does not exist. The progress markers and the snapshot
// state are each read this way.
func lastEvent(ctx context.Context, db *esdb.Client, stream string) (*esdb.RecordedEvent, error) {
	rs, err := db.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		if hasCode(err, esdb.ErrorCodeResourceNotFound) {
			return nil, nil
		}
		return nil, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) || hasCode(err, esdb.ErrorCodeResourceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ev.Event, nil
}
