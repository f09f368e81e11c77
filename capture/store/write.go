package store

import (
	"context"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// Expect is the revision an append expects its stream to be at.
type Expect struct {
	rev uint64
	any bool
}

// Any expects nothing of the stream.
func Any() Expect { return Expect{any: true} }

// At expects the stream's last event to be revision rev.
func At(rev uint64) Expect { return Expect{rev: rev} }

func (e Expect) esdb() esdb.ExpectedRevision {
	if e.any {
		return esdb.Any{}
	}
	return esdb.Revision(e.rev)
}

// AppendOne appends one JSON event of Chronicler's own (a progress marker,
// snapshot state) with a random id, and returns the stream's new revision.
// A wrong expectation is an error for which IsWrongVersion holds. (Events
// derived from changes go through the Appender, with deterministic ids.)
func (c *Client) AppendOne(ctx context.Context, stream string, expect Expect, eventType string, data []byte) (uint64, error) {
	res, err := c.db.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expect.esdb()}, esdb.EventData{
		// A random id: a deterministic one would make the server drop, as an
		// idempotent retry, an event equal to one written long ago (a
		// progress marker for an LSN a killed run had already written).
		EventID:     uuid.New(),
		EventType:   eventType,
		ContentType: esdb.ContentTypeJson,
		Data:        data,
	})
	if err != nil {
		return 0, err
	}
	return res.NextExpectedVersion, nil
}

// SetMaxCount sets $maxCount on stream's metadata, so the store keeps only
// its last n events.
func (c *Client) SetMaxCount(ctx context.Context, stream string, n uint64) error {
	var meta esdb.StreamMetadata
	meta.SetMaxCount(n)
	_, err := c.db.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, meta)
	return err
}
