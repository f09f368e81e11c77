package kurrentdb

import (
	"context"
	"encoding/hex"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Subscriptions never switch from a catch-up reader to a live buffer: a
// subscription is one loop that reads the log from its own cursor, in
// batches, under the store lock, and when a read comes back empty it waits
// on the store's change channel taken in that same locked read. That
// removes the classic catch-up/live race. Walk through it:
//
//  1. The subscriber reads log[cursor:visible] and the channel C under the lock.
//  2. An append becomes visible after the lock is released: markVisible moves
//     the watermark and closes C (under the lock), then installs C'.
//  3. The subscriber, having got an empty batch, selects on C: it is already
//     closed, so it wakes at once and reads again from its cursor.
//
// An advance either happened before step 1 (its records are in the batch) or
// after it (C is closed), so no event is missed, and since the cursor only
// moves forward past records already sent, none is sent twice. A slow client
// only slows its own loop (gRPC flow control), never the writers: records
// stay in the log, so there is no live buffer to overflow and no fell_behind.
//
// caught_up is sent the first time a read comes back empty, i.e. when the
// subscriber has sent everything visible at that moment.

func (s *Server) startSub(srv streams.Streams_ReadServer) (context.Context, func(), error) {
	ctx, cancel := context.WithCancel(srv.Context())
	unregister, ok := s.register(s.subs, cancel)
	if !ok {
		cancel()
		return nil, nil, status.Error(codes.Unavailable, "Server Is Not Ready: shutting down")
	}
	return ctx, func() { unregister(); cancel() }, nil
}

func (o *sender) confirm() error {
	id := newID()
	return o.srv.Send(&streams.ReadResp{Content: &streams.ReadResp_Confirmation{Confirmation: &streams.ReadResp_SubscriptionConfirmation{
		SubscriptionId: hex.EncodeToString(id[:]),
	}}})
}

// wait blocks until changed is closed; it reports why the subscription must
// end otherwise (client gone, dropped by DropSubscriptions or Close).
func waitChange(ctx, parent context.Context, changed <-chan struct{}) error {
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		if parent.Err() != nil {
			return status.FromContextError(parent.Err()).Err()
		}
		return status.Error(codes.Unavailable, "subscription dropped by the server")
	}
}

// subscribeAll: Start delivers everything, a position is exclusive, End
// delivers live events only. With a filter, a checkpoint goes out every
// filter.interval considered events (matching or not), and once at the end
// of catch-up at the last considered position (see doc.go for how this
// differs from the reference).
func (s *Server) subscribeAll(srv streams.Streams_ReadServer, out *sender, ao *streams.ReadReq_Options_AllOptions, f *filter) error {
	pos, isStart, isEnd, err := allStart(ao)
	if err != nil {
		return err
	}
	ctx, done, err := s.startSub(srv)
	if err != nil {
		return err
	}
	defer done()
	cursor, inclusive := pos, false
	if isStart {
		cursor, inclusive = 0, true
	}
	if isEnd {
		cursor = s.store.watermarkNow()
	}
	// checkpoint is the position caught_up reports: the last event or
	// checkpoint sent, else where the subscription started (none from Start).
	checkpoint := cursor
	if err := out.confirm(); err != nil {
		return err
	}
	sinceCheckpoint, caughtUp := 0, false
	for {
		recs, changed, err := s.store.readAll(cursor, inclusive, readBatch)
		if err != nil {
			return toStatus(err, srv.SetTrailer)
		}
		if len(recs) == 0 {
			if !caughtUp {
				if f != nil && sinceCheckpoint > 0 {
					if err := out.checkpoint(cursor); err != nil {
						return err
					}
					sinceCheckpoint, checkpoint = 0, cursor
				}
				if err := out.caughtUp(-1, false, checkpoint); err != nil {
					return err
				}
				caughtUp = true
			}
			if err := waitChange(ctx, srv.Context(), changed); err != nil {
				return err
			}
			continue
		}
		for _, r := range recs {
			cursor, inclusive = r.Position, false
			if f.allows(r) {
				if err := out.event(r); err != nil {
					return err
				}
				checkpoint = r.Position
			}
			if f != nil {
				sinceCheckpoint++
				if sinceCheckpoint >= f.interval {
					if err := out.checkpoint(r.Position); err != nil {
						return err
					}
					sinceCheckpoint, checkpoint = 0, r.Position
				}
			}
		}
		if ctx.Err() != nil {
			return waitChange(ctx, srv.Context(), nil)
		}
	}
}

// subscribeStream: Start delivers from the first readable revision, a
// revision is exclusive, End delivers live events only. A missing stream is
// fine (confirmation, then caught_up). A tombstoned stream fails at once with
// stream-deleted; a tombstone that arrives later is delivered, then the
// subscription fails with stream-deleted.
func (s *Server) subscribeStream(srv streams.Streams_ReadServer, out *sender, so *streams.ReadReq_Options_StreamOptions) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	st := s.store
	ss, _, err := st.readStream(name, func(*streamState) (int64, int64, bool) { return 0, -1, false })
	if err != nil {
		return toStatus(err, srv.SetTrailer)
	}
	if ss.tombstoned {
		return toStatus(&StreamDeletedError{Stream: name}, srv.SetTrailer)
	}
	first, last, meta, ok := ss.first, ss.last, ss.meta, ss.ok
	// next is the first revision to send; sent is the revision caught_up
	// reports: the last one sent, else the one the subscription started
	// after (-1 from Start: none).
	var next, sent int64
	switch rv := so.GetRevisionOption().(type) {
	case *streams.ReadReq_Options_StreamOptions_Revision:
		next = clampRevision(rv.Revision) + 1
		sent = next - 1
	case *streams.ReadReq_Options_StreamOptions_End:
		next, sent = last+1, last
	default:
		next, sent = first, -1
		if !ok && meta.softDeleted() {
			next = last + 1
		}
	}

	ctx, done, err := s.startSub(srv)
	if err != nil {
		return err
	}
	defer done()
	if err := out.confirm(); err != nil {
		return err
	}
	caughtUp := false
	for {
		recs, tomb, changed, err := st.readStreamFrom(name, next, readBatch)
		if err != nil {
			return toStatus(err, srv.SetTrailer)
		}
		for _, r := range recs {
			if err := out.event(r); err != nil {
				return err
			}
			next, sent = r.Revision+1, r.Revision
		}
		if len(recs) > 0 {
			if ctx.Err() != nil {
				return waitChange(ctx, srv.Context(), nil)
			}
			continue
		}
		if tomb != nil {
			if err := out.event(tomb); err != nil {
				return err
			}
			return toStatus(&StreamDeletedError{Stream: name}, srv.SetTrailer)
		}
		if !caughtUp {
			if err := out.caughtUp(sent, true, 0); err != nil {
				return err
			}
			caughtUp = true
		}
		if err := waitChange(ctx, srv.Context(), changed); err != nil {
			return err
		}
	}
}
