package kurrentdb

import (
	"strconv"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// readBatch bounds how many records a reader copies per store lock.
const readBatch = 512

// Read serves stream and $all reads (count_option count) and subscriptions
// (count_option subscription).
func (s *Server) Read(req *streams.ReadReq, srv streams.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read request without options")
	}
	if err := s.route(srv.Context(), false, srv.SetTrailer); err != nil {
		return err
	}
	out := &sender{srv: srv, st: s.store, structured: o.GetUuidOption().GetString_() == nil, resolve: o.GetResolveLinks()}
	f, err := newFilter(o.GetFilter(), o.GetSubscription() != nil)
	if err != nil {
		return err
	}
	if o.GetSubscription() != nil {
		if so := o.GetStream(); so != nil {
			return s.subscribeStream(srv, out, so)
		}
		return s.subscribeAll(srv, out, o.GetAll(), f)
	}
	back := o.GetReadDirection() == streams.ReadReq_Options_Backwards
	if so := o.GetStream(); so != nil {
		return s.readStream(srv, out, so, back, o.GetCount())
	}
	return s.readAll(out, o.GetAll(), back, o.GetCount(), f)
}

func (s *Server) readStream(srv streams.Streams_ReadServer, out *sender, so *streams.ReadReq_Options_StreamOptions, back bool, count uint64) error {
	name := string(so.GetStreamIdentifier().GetStreamName())
	st := s.store
	var cutoff int64 // created ticks below which $maxAge hides an event
	ss, locs, err := st.readStream(name, func(ss *streamState) (lo, hi int64, backwards bool) {
		if ss.meta != nil && ss.meta.maxAgeSeconds > 0 {
			cutoff = st.now().Add(-time.Duration(ss.meta.maxAgeSeconds)*time.Second).UnixNano() / 100
		}
		// With $maxAge some events may be skipped: locate them all and
		// stop at count below; else exactly count of them.
		bounded := cutoff == 0
		if !back {
			from := ss.first
			if rv, ok := so.GetRevisionOption().(*streams.ReadReq_Options_StreamOptions_Revision); ok {
				from = max(ss.first, clampRevision(rv.Revision))
			} else if so.GetEnd() != nil {
				from = ss.last + 1
			}
			hi = ss.last
			if bounded && from <= hi && count < uint64(hi-from+1) {
				hi = from + int64(count) - 1
			}
			return from, hi, false
		}
		from := ss.last
		if rv, ok := so.GetRevisionOption().(*streams.ReadReq_Options_StreamOptions_Revision); ok {
			from = min(ss.last, clampRevision(rv.Revision))
		} else if so.GetStart() != nil {
			from = min(ss.last, ss.first)
		}
		lo = ss.first
		if bounded && lo <= from && count < uint64(from-lo+1) {
			lo = from - int64(count) + 1
		}
		return lo, from, true
	})
	switch {
	case err != nil:
		return toStatus(err, srv.SetTrailer)
	case ss.tombstoned:
		return toStatus(&StreamDeletedError{Stream: name}, srv.SetTrailer)
	case !ss.ok:
		return srv.Send(&streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{StreamNotFound: &streams.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
		}}})
	}
	sent := uint64(0)
	for len(locs) > 0 && sent < count {
		n := min(len(locs), readBatch)
		recs, err := st.fetch(locs[:n], true)
		if err != nil {
			return toStatus(err, srv.SetTrailer)
		}
		locs = locs[n:]
		for _, r := range recs {
			if sent >= count {
				break
			}
			if r.Created < cutoff {
				continue
			}
			if err := out.event(r); err != nil {
				return err
			}
			sent++
		}
	}
	return nil
}

func clampRevision(v uint64) int64 {
	if v > uint64(tombstoneRevision) {
		return tombstoneRevision
	}
	return int64(v)
}

// allStart decodes the start of a $all read or subscription.
func allStart(ao *streams.ReadReq_Options_AllOptions) (pos uint64, isStart, isEnd bool, err error) {
	switch v := ao.GetAllOption().(type) {
	case *streams.ReadReq_Options_AllOptions_Position:
		if v.Position.GetPreparePosition() > v.Position.GetCommitPosition() {
			return 0, false, false, status.Errorf(codes.InvalidArgument, "Invalid $all position: prepare %d > commit %d",
				v.Position.GetPreparePosition(), v.Position.GetCommitPosition())
		}
		return v.Position.GetCommitPosition(), false, false, nil
	case *streams.ReadReq_Options_AllOptions_End:
		return 0, false, true, nil
	}
	return 0, true, false, nil
}

// readAll: forwards from P includes P, backwards from P excludes P.
func (s *Server) readAll(out *sender, ao *streams.ReadReq_Options_AllOptions, back bool, count uint64, f *filter) error {
	pos, isStart, isEnd, err := allStart(ao)
	if err != nil {
		return err
	}
	if (back && isStart) || (!back && isEnd) || (back && !isEnd && pos == 0) {
		return nil
	}
	sent := uint64(0)
	cursor, inclusive := pos, true
	if back && isEnd {
		cursor = 0 // readAllBackwards: 0 = from the end
	}
	for sent < count {
		var recs []*record
		if back {
			recs, err = s.store.readAllBackwards(cursor, readBatch)
		} else {
			recs, _, err = s.store.readAll(cursor, inclusive, readBatch)
		}
		if err != nil {
			return toStatus(err, out.srv.SetTrailer)
		}
		if len(recs) == 0 {
			return nil
		}
		for _, r := range recs {
			cursor, inclusive = r.Position, false
			if sent >= count {
				break
			}
			if !f.allows(r) {
				continue
			}
			if err := out.event(r); err != nil {
				return err
			}
			sent++
		}
	}
	return nil
}

// sender converts records to ReadResp messages.
type sender struct {
	srv        streams.Streams_ReadServer
	st         *store
	structured bool
	resolve    bool
}

func (o *sender) recorded(r *record) *streams.ReadResp_ReadEvent_RecordedEvent {
	return &streams.ReadResp_ReadEvent_RecordedEvent{
		Id:               idToProto(r.ID, o.structured),
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.Stream)},
		StreamRevision:   uint64(r.Revision),
		PreparePosition:  r.Position,
		CommitPosition:   r.Position,
		Metadata: map[string]string{
			"type":         r.Type,
			"content-type": contentTypeRead(r.ContentType),
			"created":      strconv.FormatInt(r.Created, 10),
		},
		CustomMetadata: r.Metadata,
		Data:           r.Data,
	}
}

// contentTypeRead is the content type a read answers: the real server keeps
// only whether an event is JSON (Event.IsJson: the content type written was
// exactly "application/json") and answers application/json or
// application/octet-stream from that (Streams.Read.cs ConvertToRecordedEvent).
func contentTypeRead(written string) string {
	if written == contentTypeJSON {
		return contentTypeJSON
	}
	return contentTypeBinary
}

// event sends r (with its link target when resolving links). Every event
// carries its commit position: in 24.10 every event commits itself, so the
// real server knows it for stream reads and subscriptions too
// (ResolvedEvent.OriginalPosition; Streams.Read.cs ConvertToReadEvent).
func (o *sender) event(r *record) error {
	ev := &streams.ReadResp_ReadEvent{Event: o.recorded(r)}
	if o.resolve && r.Type == "$>" {
		target, err := o.st.resolveLink(r)
		if err != nil {
			return toStatus(err, o.srv.SetTrailer)
		}
		if target != nil {
			ev.Event, ev.Link = o.recorded(target), ev.Event
		}
	}
	ev.Position = &streams.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.Position}
	return o.srv.Send(&streams.ReadResp{Content: &streams.ReadResp_Event{Event: ev}})
}

// checkpoint sends a filtered $all subscription's checkpoint, with the
// server's time (24.10.5+).
func (o *sender) checkpoint(pos uint64) error {
	cp := &streams.ReadResp_Checkpoint{CommitPosition: pos, PreparePosition: pos}
	return o.srv.Send(&streams.ReadResp{Content: &streams.ReadResp_Checkpoint_{
		Checkpoint: withUnknown(cp, appendTimestamp(nil, 3, o.st.now())),
	}})
}

// caughtUp sends caught_up with the server's time and the subscription's
// checkpoint (24.10.5+): for a stream subscription the last revision sent
// (or the one it started after; none before the first event), for $all the
// last position sent, event or checkpoint (or the one it started after;
// none from Start before anything was sent). See Enumerator.*Subscription.cs.
func (o *sender) caughtUp(revision int64, isStream bool, pos uint64) error {
	cu := withUnknown(&streams.ReadResp_CaughtUp{}, caughtUpFields(o.st.now(), revision, isStream, pos))
	return o.srv.Send(&streams.ReadResp{Content: &streams.ReadResp_CaughtUp_{CaughtUp: cu}})
}
