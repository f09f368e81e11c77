package store

import (
	"context"
	"errors"
	"io"
	"math"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Recorded is a stored event as read back.
type Recorded struct {
	ID       uuid.UUID
	Stream   string
	Revision uint64 // its number in its stream
	Type     string
	Data     []byte
	Metadata []byte // the custom metadata (JSON for Chronicler's events)
	Pos      contract.StorePos
	Created  time.Time // when the store wrote it
}

func recorded(ev *esdb.RecordedEvent) *Recorded {
	return &Recorded{ID: ev.EventID, Stream: ev.StreamID, Revision: ev.EventNumber, Type: ev.EventType, Data: ev.Data,
		Metadata: ev.UserMetadata, Pos: contract.StorePos{Commit: ev.Position.Commit, Prepare: ev.Position.Prepare}, Created: ev.CreatedDate}
}

// ReadLast reads the last event of stream: nil (and no error) when the
// stream has none, does not exist or was soft-deleted. It is the one "last
// event of a stream" read: progress markers, snapshot state and
// `chronicler status` use it, and the appender's tail reads go through the
// same readBack.
func (c *Client) ReadLast(ctx context.Context, stream string) (*Recorded, error) {
	ev, err := readLast(ctx, c.db, stream)
	if ev == nil || err != nil {
		return nil, err
	}
	return recorded(ev), nil
}

func readLast(ctx context.Context, db *esdb.Client, stream string) (*esdb.RecordedEvent, error) {
	var last *esdb.RecordedEvent
	err := readBack(ctx, db, stream, 1, func(ev *esdb.RecordedEvent) bool {
		last = ev
		return false
	})
	return last, err
}

// readBackPage is how many events readBack asks for per read when the
// caller reads past the last event.
const readBackPage = 256

// readBack reads stream backwards from its end, page events per read,
// calling fn with each event until fn returns false or the stream's start.
// A stream that does not exist (or was soft-deleted) has no events.
func readBack(ctx context.Context, db *esdb.Client, stream string, page uint64, fn func(*esdb.RecordedEvent) bool) error {
	var from esdb.StreamPosition = esdb.End{}
	for {
		rs, err := db.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: from}, page)
		if err != nil {
			if errorCode(err) == esdb.ErrorCodeResourceNotFound {
				return nil
			}
			return err
		}
		n, last := uint64(0), uint64(0)
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				if errorCode(err) == esdb.ErrorCodeResourceNotFound {
					return nil
				}
				return err
			}
			n++
			last = ev.Event.EventNumber
			if !fn(ev.Event) {
				rs.Close()
				return nil
			}
		}
		rs.Close()
		if n < page || last == 0 {
			return nil
		}
		from = esdb.Revision(last - 1)
	}
}

// ReadLastAll reads the last event of $all: nil when $all is empty.
func (c *Client) ReadLastAll(ctx context.Context) (*Recorded, error) {
	rs, err := c.db.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
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
	return recorded(ev.OriginalEvent()), nil
}

// ReadAll reads $all forwards from from (after its position), at most limit
// events, calling fn with each until fn returns false.
func (c *Client) ReadAll(ctx context.Context, from contract.StoreFrom, limit uint64, fn func(*Recorded) bool) error {
	n := limit
	if !from.Start && n < math.MaxUint64 {
		n++ // a read from a position starts at that position's event
	}
	rs, err := c.db.ReadAll(ctx, esdb.ReadAllOptions{From: allPosition(from)}, n)
	if err != nil {
		return err
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r := recorded(ev.OriginalEvent())
		if !from.Start && !from.StorePos.Less(r.Pos) {
			continue // the read starts at from's event itself
		}
		if limit == 0 || !fn(r) {
			return nil
		}
		limit--
	}
}

func allPosition(from contract.StoreFrom) esdb.AllPosition {
	if from.Start {
		return esdb.Start{}
	}
	return esdb.Position{Commit: from.Commit, Prepare: from.Prepare}
}

// Bounded runs f and returns its error, or ctx's once ctx ends first. The
// official client does not honour contexts while it discovers a node, so f
// may outlive the call; it must only touch what it owns.
func Bounded(ctx context.Context, f func(ctx context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errors.Join(ErrNoAnswer, ctx.Err())
	}
}

// ErrNoAnswer is Bounded's error when ctx ended before f returned. The
// client must then not be closed: f may still be inside it (the official
// client's Close races with a call in discovery), and with the discovery
// policy of Connect, f never returns while the store is away; a command
// that gives up leaves the client to the process's exit.
var ErrNoAnswer = errors.New("no answer")
