package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// The $all subscription on a single-node store is read over Chronicler's
// own connection (dialDirect), with the answers decoded by hand: the
// official client's Subscription unmarshals every answer into the
// generated ReadResp and converts it (about 30 allocations per event),
// which was a tenth of the publisher's CPU in test/bench's bulk load. The
// request is the official client's for the same options (SubscribeToAll
// with a filter, MaxSearchWindow 32, CheckpointInterval 1; the generated
// message, marshalled by proto), and what a reader sees is the same: the
// events in order (FuzzReadResponse and TestDirectSubscriptionMatchesOfficial
// hold the two paths to the same Recorded values). A cluster connection
// string subscribes through the official client.

var readDesc = &grpc.StreamDesc{StreamName: "Read", ServerStreams: true}

// readRequest is the official client's subscription request for filter
// after from (esdb's toAllSubscriptionRequest with toFilterOptions).
func readRequest(filter Filter, from contract.StoreFrom) (*streams.ReadReq, error) {
	if len(filter.Prefixes) == 0 && filter.Regex == "" {
		return nil, errors.New("the subscription filter requires a set of prefixes or a regex")
	}
	if len(filter.Prefixes) > 0 && filter.Regex != "" {
		return nil, errors.New("the subscription filter may only contain a regex or a set of prefixes, but not both")
	}
	all := &streams.ReadReq_Options_AllOptions{AllOption: &streams.ReadReq_Options_AllOptions_Start{Start: &shared.Empty{}}}
	if !from.Start {
		all.AllOption = &streams.ReadReq_Options_AllOptions_Position{Position: &streams.ReadReq_Options_Position{CommitPosition: from.Commit, PreparePosition: from.Prepare}}
	}
	expr := &streams.ReadReq_Options_FilterOptions_Expression{Prefix: filter.Prefixes, Regex: filter.Regex}
	fo := &streams.ReadReq_Options_FilterOptions{CheckpointIntervalMultiplier: 1, Window: &streams.ReadReq_Options_FilterOptions_Max{Max: 32}}
	if filter.ByStream {
		fo.Filter = &streams.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: expr}
	} else {
		fo.Filter = &streams.ReadReq_Options_FilterOptions_EventType{EventType: expr}
	}
	return &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption:  &streams.ReadReq_Options_All{All: all},
		ReadDirection: streams.ReadReq_Options_Forwards,
		CountOption:   &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}},
		FilterOption:  &streams.ReadReq_Options_Filter{Filter: fo},
		UuidOption:    &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
	}}, nil
}

// subscribeDirect opens the subscription on d and waits for its
// confirmation, as the official client's SubscribeToAll does; cancel ends it.
func subscribeDirect(ctx context.Context, d *direct, filter Filter, from contract.StoreFrom) (grpc.ClientStream, context.CancelFunc, error) {
	req, err := readRequest(filter, from)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(d.ctx(ctx))
	st, err := d.conn.NewStream(ctx, readDesc, streams.Streams_Read_FullMethodName, grpc.ForceCodecV2(readCodec{}))
	if err == nil {
		err = st.SendMsg(req)
	}
	if err == nil {
		err = st.CloseSend()
	}
	var first readResponse
	if err == nil {
		err = st.RecvMsg(&first)
	}
	if err == nil && !first.confirmed {
		err = errors.New("the store's first answer was not a subscription confirmation")
	}
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("subscribing to $all: %w", err)
	}
	return st, cancel, nil
}

// deliverDirect hands st's events to out until the subscription drops or
// ctx ends, and returns the position after the last one delivered.
func deliverDirect(ctx context.Context, st grpc.ClientStream, pos contract.StoreFrom, out chan<- *Recorded, log *slog.Logger) contract.StoreFrom {
	resp := readResponse{types: map[string]string{}}
	for {
		if err := st.RecvMsg(&resp); err != nil {
			if ctx.Err() == nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("the store ended the subscription")
				}
				log.Warn("subscription dropped; resubscribing", "after", pos, "err", err)
			}
			return pos
		}
		ev := resp.ev
		if ev == nil {
			continue // a checkpoint, caught up, fell behind
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return pos
		}
		pos = contract.After(ev.Pos)
	}
}

// readCodec is the "proto" codec of the Read call: the request is the
// generated message; answers are *readResponse.
type readCodec struct{}

func (readCodec) Name() string { return "proto" }

func (readCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("store: Read codec cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (readCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*readResponse)
	if !ok {
		return fmt.Errorf("store: Read codec cannot unmarshal into %T", v)
	}
	if len(data) == 1 {
		return r.decode(data[0].ReadOnlyData())
	}
	return r.decode(data.Materialize())
}

// readResponse is one ReadResp: an event (ev), the confirmation, or
// something a reader skips. The usual event, a recorded event without a
// link, is read by hand; anything else by proto.Unmarshal (slowEvent).
type readResponse struct {
	ev        *Recorded
	confirmed bool
	types     map[string]string // event types seen: one string each
}

func (r *readResponse) decode(b []byte) error {
	r.ev, r.confirmed = nil, false
	if ev, ok := r.fast(b); ok {
		r.ev = ev
		return nil
	}
	var m streams.ReadResp
	if err := proto.Unmarshal(b, &m); err != nil {
		return err
	}
	r.confirmed = m.GetConfirmation() != nil
	r.ev = slowEvent(&m)
	return nil
}

// slowEvent is the event of m as the official client gives it
// (ResolvedEvent.OriginalEvent: the link if any, else the event), nil when
// m holds none.
func slowEvent(m *streams.ReadResp) *Recorded {
	e := m.GetEvent()
	if e == nil {
		return nil
	}
	rec := e.GetLink()
	if rec == nil {
		rec = e.GetEvent()
	}
	if rec == nil {
		return nil
	}
	id, _ := fromProtoUUID(rec.GetId())
	return &Recorded{ID: id, Stream: string(rec.GetStreamIdentifier().GetStreamName()), Revision: rec.GetStreamRevision(),
		Type: rec.GetMetadata()["type"], Data: rec.GetData(), Metadata: rec.GetCustomMetadata(),
		Pos: contract.StorePos{Commit: rec.GetCommitPosition(), Prepare: rec.GetPreparePosition()}, Created: created(rec.GetMetadata()["created"])}
}

// created reads the store's "created" metadata: .NET ticks (100 ns) since
// the Unix epoch; the zero time when it does not parse (the official
// client exits the process then).
func created(ticks string) time.Time {
	n, err := strconv.ParseInt(ticks, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n*100).UTC()
}

// fast reads b if it is ReadResp{1 event: ReadEvent{1 event: RecordedEvent,
// 3 commit_position | 4 no_position {}}}, every field once (the metadata
// map's entries excepted) with its wire type, the RecordedEvent being
//
//	1 id {1 structured {1 most, 2 least}}, 2 stream_identifier {3 stream_name},
//	3 stream_revision, 4 prepare_position, 5 commit_position,
//	6 metadata entries {1 key, 2 value} (valid UTF-8), 7 custom_metadata, 8 data
//
// with a "created" entry that parses. Anything else returns false
// (proto.Unmarshal then reads it), so what fast accepts, proto.Unmarshal
// accepts too and reads alike.
func (r *readResponse) fast(b []byte) (*Recorded, bool) {
	rec, ok := eventRecord(b)
	if !ok {
		return nil, false
	}
	var f recordFields
	if !walk(rec, f.field) || !f.haveTicks {
		return nil, false
	}
	return f.recorded(r)
}

// eventRecord finds the RecordedEvent of a ReadResp{event{event, commit
// position or no position}}: the only shape fast reads.
func eventRecord(b []byte) ([]byte, bool) {
	var rec []byte
	seen := false
	ok := walk(b, func(num protowire.Number, typ protowire.Type, _ uint64, body []byte) bool {
		if num != 1 || typ != protowire.BytesType || seen {
			return false
		}
		seen = true
		var seenEv uint8
		return walk(body, func(num protowire.Number, typ protowire.Type, _ uint64, body []byte) bool {
			if num > 4 || seenEv&(1<<num) != 0 {
				return false
			}
			seenEv |= 1 << num
			switch {
			case num == 1 && typ == protowire.BytesType:
				rec = body
				return true
			case num == 3 && typ == protowire.VarintType:
				return seenEv&(1<<4) == 0
			case num == 4 && typ == protowire.BytesType:
				return len(body) == 0 && seenEv&(1<<3) == 0
			}
			return false
		})
	})
	return rec, ok && rec != nil
}

// recordFields collects a RecordedEvent's fields as fast walks them.
type recordFields struct {
	ev                  Recorded
	seen                uint16
	stream, data, meta  []byte
	typ, createdTicks   []byte
	haveType, haveTicks bool
}

// field takes one field of a RecordedEvent; false for anything fast does
// not read (the full decoder then does).
func (f *recordFields) field(num protowire.Number, wt protowire.Type, v uint64, body []byte) bool {
	if num > 8 || num != 6 && f.seen&(1<<num) != 0 {
		return false
	}
	f.seen |= 1 << num
	switch {
	case num == 1 && wt == protowire.BytesType:
		var id batchResponse // its uuid reader: UUID {1 structured {1 most, 2 least}}
		if !id.uuid(body) {
			return false
		}
		f.ev.ID = uuidFromBits(id.most, id.least)
		return true
	case num == 2 && wt == protowire.BytesType:
		var seenName bool
		return walk(body, func(num protowire.Number, wt protowire.Type, _ uint64, name []byte) bool {
			if num != 3 || wt != protowire.BytesType || seenName {
				return false
			}
			seenName, f.stream = true, name
			return true
		})
	case num == 3 && wt == protowire.VarintType:
		f.ev.Revision = v
		return true
	case num == 4 && wt == protowire.VarintType:
		f.ev.Pos.Prepare = v
		return true
	case num == 5 && wt == protowire.VarintType:
		f.ev.Pos.Commit = v
		return true
	case num == 6 && wt == protowire.BytesType:
		return f.metadataEntry(body)
	case num == 7 && wt == protowire.BytesType:
		f.meta = body
		return true
	case num == 8 && wt == protowire.BytesType:
		f.data = body
		return true
	}
	return false
}

// metadataEntry takes one entry of the server's metadata map (type,
// created; others are skipped).
func (f *recordFields) metadataEntry(body []byte) bool {
	var key, val []byte
	var seenKV uint8
	if !walk(body, func(num protowire.Number, wt protowire.Type, _ uint64, s []byte) bool {
		if (num != 1 && num != 2) || wt != protowire.BytesType || seenKV&(1<<num) != 0 || !utf8.Valid(s) {
			return false
		}
		seenKV |= 1 << num
		if num == 1 {
			key = s
		} else {
			val = s
		}
		return true
	}) || seenKV != 1<<1|1<<2 {
		return false
	}
	// A repeated key: its last value, as a map keeps it.
	switch string(key) {
	case "type":
		f.typ, f.haveType = val, true
	case "created":
		f.createdTicks, f.haveTicks = val, true
	}
	return true
}

// recorded builds the event from its fields, copying out of the answer's
// buffer.
func (f *recordFields) recorded(r *readResponse) (*Recorded, bool) {
	ev := f.ev
	ticks, err := strconv.ParseInt(string(f.createdTicks), 10, 64)
	if err != nil {
		return nil, false
	}
	ev.Created = time.Unix(0, ticks*100).UTC()
	// The answer's buffer is gRPC's: data and metadata are copied out, into
	// one allocation.
	if len(f.data)+len(f.meta) > 0 {
		buf := make([]byte, len(f.data)+len(f.meta))
		copy(buf, f.data)
		copy(buf[len(f.data):], f.meta)
		if f.data != nil {
			ev.Data = buf[:len(f.data):len(f.data)]
		}
		if f.meta != nil {
			ev.Metadata = buf[len(f.data):]
		}
	} else {
		if f.data != nil {
			ev.Data = []byte{}
		}
		if f.meta != nil {
			ev.Metadata = []byte{}
		}
	}
	ev.Stream = string(f.stream)
	if f.haveType {
		ev.Type = r.intern(f.typ)
	}
	return &ev, true
}

// intern returns the string of an event type, one per distinct type (a
// bounded set; past 4,096 a new string each time).
func (r *readResponse) intern(b []byte) string {
	if s, ok := r.types[string(b)]; ok {
		return s
	}
	s := string(b)
	if r.types != nil && len(r.types) < 4096 {
		r.types[s] = s
	}
	return s
}
