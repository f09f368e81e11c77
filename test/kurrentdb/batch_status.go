package kurrentdb

import (
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The google.rpc.Status values a BatchAppend answer carries in its error
// field. Codes, messages and detail messages are those of KurrentDB 24.10's
// Status helpers (Status.cs): the message is the detail's name, the detail
// is the shared.proto message packed in an Any.

func rpcStatus(code codes.Code, msg string, detail proto.Message) *rpcstatus.Status {
	a, err := anypb.New(detail)
	if err != nil { // only for a message that cannot be marshalled: none of ours
		return &rpcstatus.Status{Code: int32(codes.Internal), Message: err.Error()}
	}
	return &rpcstatus.Status{Code: int32(code), Message: msg, Details: []*anypb.Any{a}}
}

func wevStatus(w *WrongExpectedVersionError) *rpcstatus.Status {
	d := &shared.WrongExpectedVersion{}
	if w.Current < 0 {
		d.CurrentStreamRevisionOption = &shared.WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &emptypb.Empty{}}
	} else {
		d.CurrentStreamRevisionOption = &shared.WrongExpectedVersion_CurrentStreamRevision{CurrentStreamRevision: uint64(w.Current)}
	}
	switch w.Expected.Kind {
	case ExpectAny:
		d.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedAny{ExpectedAny: &emptypb.Empty{}}
	case ExpectNoStream:
		d.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &emptypb.Empty{}}
	case ExpectStreamExists:
		d.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &emptypb.Empty{}}
	default:
		d.ExpectedStreamPositionOption = &shared.WrongExpectedVersion_ExpectedStreamPosition{ExpectedStreamPosition: w.Expected.Revision}
	}
	return rpcStatus(codes.AlreadyExists, "WrongExpectedVersion", d)
}

func streamDeletedStatus(name string) *rpcstatus.Status {
	return rpcStatus(codes.NotFound, "StreamDeleted", &shared.StreamDeleted{
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
	})
}

func timeoutStatus() *rpcstatus.Status {
	return rpcStatus(codes.DeadlineExceeded, "Timeout", &shared.Timeout{})
}

func unknownStatus() *rpcstatus.Status {
	return rpcStatus(codes.Unknown, "Unknown", &shared.Unknown{})
}

func maxAppendSizeStatus(max int) *rpcstatus.Status {
	return rpcStatus(codes.InvalidArgument, "MaximumAppendSizeExceeded", &shared.MaximumAppendSizeExceeded{MaxAppendSize: uint32(max)})
}

// maxAppendEventSizeStatus: one event over the maximum append event size;
// the detail is MaximumAppendEventSizeExceeded, newer than the Go client's
// protos (see newfields.go). The event id is a Guid's text, as the real
// server's AddEvents writes it.
func maxAppendEventSizeStatus(eventID string, size, max int) *rpcstatus.Status {
	return &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: "MaximumAppendEventSizeExceeded",
		Details: []*anypb.Any{maxAppendEventSizeDetail(eventID, size, max)}}
}

func badRequestStatus(msg string) *rpcstatus.Status {
	return rpcStatus(codes.InvalidArgument, "BadRequest", &shared.BadRequest{Message: msg})
}

// notReadyStatus is the answer to a write the server did not take (the real
// server's NotHandled/NotReady: message "Server Is Not Ready", an Empty
// detail). The real server leaves the code at 0 (inferred from Status
// construction without a Code); this server sets Unavailable so that no
// client can mistake it for success. See doc.go.
func notReadyStatus() *rpcstatus.Status {
	return rpcStatus(codes.Unavailable, "Server Is Not Ready", &emptypb.Empty{})
}

// batchError builds an error answer for one correlation id.
func batchError(corr *shared.UUID, stream *shared.StreamIdentifier, st *rpcstatus.Status) *streams.BatchAppendResp {
	return &streams.BatchAppendResp{
		CorrelationId:    corr,
		StreamIdentifier: stream,
		Result:           &streams.BatchAppendResp_Error{Error: st},
	}
}

// batchSuccess builds the success answer: the stream's last revision (or
// no_stream) and the position of the last event written (or found, for an
// idempotent retry).
func batchSuccess(corr *shared.UUID, stream string, res writeResult) *streams.BatchAppendResp {
	ok := &streams.BatchAppendResp_Success{
		PositionOption: &streams.BatchAppendResp_Success_Position{Position: &shared.AllStreamPosition{
			CommitPosition: res.Position, PreparePosition: res.Position,
		}},
	}
	if res.Revision < 0 {
		ok.CurrentRevisionOption = &streams.BatchAppendResp_Success_NoStream{NoStream: &emptypb.Empty{}}
	} else {
		ok.CurrentRevisionOption = &streams.BatchAppendResp_Success_CurrentRevision{CurrentRevision: uint64(res.Revision)}
	}
	return &streams.BatchAppendResp{
		CorrelationId:    corr,
		StreamIdentifier: streamID(stream),
		Result:           &streams.BatchAppendResp_Success_{Success: ok},
	}
}

func streamID(name string) *shared.StreamIdentifier {
	return &shared.StreamIdentifier{StreamName: []byte(name)}
}
