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
	if err := s.notLeader(srv.SetTrailer); err != nil {
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
	st.mu.Lock()
	if st.tombstonedLocked(name, st.watermark) {
		st.mu.Unlock()
		return toStatus(&StreamDeletedError{Stream: name}, srv.SetTrailer)
	}
	sm, first, last, meta, ok := st.visibleRangeLocked(name)
	if !ok {
		st.mu.Unlock()
		return srv.Send(&streams.ReadResp{Content: &streams.ReadResp_StreamNotFound_{StreamNotFound: &streams.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
		}}})
	}
	var cutoff int64 // created ticks below which $maxAge hides an event
	if meta != nil && meta.maxAgeSeconds > 0 {
		cutoff = st.now().Add(-time.Duration(meta.maxAgeSeconds)*time.Second).UnixNano() / 100
	}
	var recs []*record
	take := func(r *record) bool {
		if uint64(len(recs)) >= count {
			return false
		}
		if r.Created >= cutoff {
			recs = append(recs, r)
		}
		return true
	}
	if !back {
		from := first
		if rv, ok := so.GetRevisionOption().(*streams.ReadReq_Options_StreamOptions_Revision); ok {
			from = max(first, clampRevision(rv.Revision))
		} else if so.GetEnd() != nil {
			from = last + 1
		}
		for i := from; i <= last && take(sm.events[i]); i++ {
		}
	} else {
		from := last
		if rv, ok := so.GetRevisionOption().(*streams.ReadReq_Options_StreamOptions_Revision); ok {
			from = min(last, clampRevision(rv.Revision))
		} else if so.GetStart() != nil {
			from = min(last, first)
		}
		for i := from; i >= first && take(sm.events[i]); i-- {
		}
	}
	st.mu.Unlock()
	for _, r := range recs {
		if err := out.event(r); err != nil {
			return err
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
			recs = s.store.readAllBackwards(cursor, readBatch)
		} else {
			recs, _, err = s.store.readAll(cursor, inclusive, readBatch)
			if err != nil {
				return toStatus(err, out.srv.SetTrailer)
			}
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
		o.st.mu.Lock()
		target := o.st.resolveLinkLocked(r)
		o.st.mu.Unlock()
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
