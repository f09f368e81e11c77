package kurrentdb

import (
	"context"
	"errors"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Append implements the client-streaming append: options first, then one
// proposed message per event. Each event is checked as it arrives, in the
// real server's order (Streams.Append.cs): "type" present, "content-type"
// present, the event's size, the append's running size; the first failure
// is the answer. The whole request stream is still read before any answer
// (an early end would make the client's Send see EOF and report Unknown;
// the real server answers at once). A wrong expected version is answered
// in the response body.
func (s *Server) Append(stream streams.Streams_AppendServer) error {
	setTrailer := stream.SetTrailer
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "the first append message must carry the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	var (
		events []proposed
		failed error // the first event that fails a check
	)
	sizes := sizeCheck{maxEvent: s.opts.MaxAppendEventSize, maxAppend: s.opts.MaxAppendSize}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message after the append options")
		}
		if failed != nil {
			continue // drain the rest of the request
		}
		typ, okT := pm.GetMetadata()["type"]
		ct, okC := pm.GetMetadata()["content-type"]
		switch {
		case !okT:
			failed = &MissingMetadataError{Property: "type"}
			continue
		case !okC:
			failed = &MissingMetadataError{Property: "content-type"}
			continue
		}
		if err := sizes.add(typ, pm.GetData(), pm.GetCustomMetadata(), func() string { return protoUUIDText(pm.GetId()) }); err != nil {
			failed = err
			continue
		}
		id, ok := idFromProto(pm.GetId())
		if !ok {
			failed = status.Error(codes.InvalidArgument, "an event id is missing or not a UUID")
			continue
		}
		events = append(events, proposed{ID: id, Type: typ, ContentType: ct, Metadata: pm.GetCustomMetadata(), Data: pm.GetData()})
	}
	if err := s.route(stream.Context(), true, setTrailer); err != nil {
		return err
	}
	switch {
	case name == "":
		return status.Error(codes.InvalidArgument, "the append names no stream")
	case failed != nil:
		return toStatus(failed, setTrailer)
	}
	injected, after := s.writeFaults(stream.Context())
	if injected != nil && !after {
		return injected
	}
	res, err := s.store.append(stream.Context(), name, expectedFromAppend(opts), events)
	var wev *WrongExpectedVersionError
	if errors.As(err, &wev) {
		return stream.SendAndClose(wrongExpectedVersion(wev))
	}
	if err != nil {
		return toStatus(err, setTrailer)
	}
	if injected != nil {
		return injected
	}
	s.counts.appends.Add(1)
	ok := &streams.AppendResp_Success{
		PositionOption: &streams.AppendResp_Success_Position{Position: &streams.AppendResp_Position{
			CommitPosition: res.Position, PreparePosition: res.Position,
		}},
	}
	if res.Revision < 0 {
		ok.CurrentRevisionOption = &streams.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		ok.CurrentRevisionOption = &streams.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(res.Revision)}
	}
	return stream.SendAndClose(&streams.AppendResp{Result: &streams.AppendResp_Success_{Success: ok}})
}

// unaryTrailer returns a SetTrailer for a unary RPC.
func unaryTrailer(ctx context.Context) func(metadata.MD) {
	return func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) }
}

// Delete soft-deletes a stream (see store.softDelete).
func (s *Server) Delete(ctx context.Context, req *streams.DeleteReq) (*streams.DeleteResp, error) {
	setTrailer := unaryTrailer(ctx)
	if err := s.route(ctx, true, setTrailer); err != nil {
		return nil, err
	}
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "the delete names no stream")
	}
	injected, after := s.writeFaults(ctx)
	if injected != nil && !after {
		return nil, injected
	}
	res, err := s.store.softDelete(ctx, name, expectedFromDelete(req.GetOptions()))
	if err != nil {
		return nil, toStatus(err, setTrailer)
	}
	if injected != nil {
		return nil, injected
	}
	return &streams.DeleteResp{PositionOption: &streams.DeleteResp_Position_{Position: &streams.DeleteResp_Position{
		CommitPosition: res.Position, PreparePosition: res.Position,
	}}}, nil
}

// Tombstone hard-deletes a stream (see store.tombstone).
func (s *Server) Tombstone(ctx context.Context, req *streams.TombstoneReq) (*streams.TombstoneResp, error) {
	setTrailer := unaryTrailer(ctx)
	if err := s.route(ctx, true, setTrailer); err != nil {
		return nil, err
	}
	name := string(req.GetOptions().GetStreamIdentifier().GetStreamName())
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "the tombstone names no stream")
	}
	injected, after := s.writeFaults(ctx)
	if injected != nil && !after {
		return nil, injected
	}
	res, err := s.store.tombstone(ctx, name, expectedFromTombstone(req.GetOptions()))
	if err != nil {
		return nil, toStatus(err, setTrailer)
	}
	if injected != nil {
		return nil, injected
	}
	return &streams.TombstoneResp{PositionOption: &streams.TombstoneResp_Position_{Position: &streams.TombstoneResp_Position{
		CommitPosition: res.Position, PreparePosition: res.Position,
	}}}, nil
}
