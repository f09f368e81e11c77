package kurrentdb

import (
	"context"
	"errors"
	"strconv"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// toStatus maps a store error to the gRPC status and trailers the real
// server sends (see the table in kurrentdb-protocol.md). setTrailer is the
// RPC's SetTrailer. WrongExpectedVersionError reaches here only from Delete
// and Tombstone: Append answers it in the response body.
func toStatus(err error, setTrailer func(metadata.MD)) error {
	var (
		deleted  *StreamDeletedError
		wev      *WrongExpectedVersionError
		big      *AppendTooLargeError
		bigEvent *EventTooLargeError
		missing  *MissingMetadataError
		stErr    *StorageError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &deleted):
		setTrailer(metadata.Pairs("exception", "stream-deleted", "stream-name", deleted.Stream))
		return status.Error(codes.FailedPrecondition, deleted.Error())
	case errors.As(err, &wev):
		setTrailer(metadata.Pairs("exception", "wrong-expected-version", "stream-name", wev.Stream,
			"expected-version", strconv.FormatInt(wev.Expected.Int64(), 10), "actual-version", strconv.FormatInt(wev.Current, 10)))
		return status.Error(codes.FailedPrecondition, wev.Error())
	case errors.As(err, &big):
		setTrailer(metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(big.Max)))
		return status.Error(codes.InvalidArgument, big.Error())
	case errors.As(err, &bigEvent):
		setTrailer(metadata.Pairs("exception", "maximum-append-event-size-exceeded",
			"maximum-append-event-size", strconv.Itoa(bigEvent.Max), "event-id", bigEvent.EventID,
			"proposed-append-event-size", strconv.Itoa(bigEvent.Size)))
		return status.Error(codes.InvalidArgument, bigEvent.Error())
	case errors.As(err, &missing):
		setTrailer(metadata.Pairs("exception", "missing-required-metadata-property", "required-metadata-properties", "type,content-type"))
		return status.Error(codes.InvalidArgument, missing.Error())
	case errors.Is(err, ErrClosed), errors.As(err, &stErr):
		return status.Error(codes.Unavailable, "Server Is Not Ready: "+err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

func expectedFromAppend(o *streams.AppendReq_Options) Expected {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.AppendReq_Options_Revision:
		return Expected{Kind: ExpectRevision, Revision: v.Revision}
	case *streams.AppendReq_Options_NoStream:
		return Expected{Kind: ExpectNoStream}
	case *streams.AppendReq_Options_StreamExists:
		return Expected{Kind: ExpectStreamExists}
	}
	return Expected{Kind: ExpectAny}
}

func expectedFromDelete(o *streams.DeleteReq_Options) Expected {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.DeleteReq_Options_Revision:
		return Expected{Kind: ExpectRevision, Revision: v.Revision}
	case *streams.DeleteReq_Options_NoStream:
		return Expected{Kind: ExpectNoStream}
	case *streams.DeleteReq_Options_StreamExists:
		return Expected{Kind: ExpectStreamExists}
	}
	return Expected{Kind: ExpectAny}
}

func expectedFromTombstone(o *streams.TombstoneReq_Options) Expected {
	switch v := o.GetExpectedStreamRevision().(type) {
	case *streams.TombstoneReq_Options_Revision:
		return Expected{Kind: ExpectRevision, Revision: v.Revision}
	case *streams.TombstoneReq_Options_NoStream:
		return Expected{Kind: ExpectNoStream}
	case *streams.TombstoneReq_Options_StreamExists:
		return Expected{Kind: ExpectStreamExists}
	}
	return Expected{Kind: ExpectAny}
}

// wrongExpectedVersion fills both the 20.6 fields (1-5) and the current ones
// (6-11) of the answer, as the real server does.
func wrongExpectedVersion(w *WrongExpectedVersionError) *streams.AppendResp {
	out := &streams.AppendResp_WrongExpectedVersion{}
	empty := &shared.Empty{}
	if w.Current < 0 {
		out.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: empty}
		out.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: empty}
	} else {
		out.CurrentRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(w.Current)}
		out.CurrentRevisionOption = &streams.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(w.Current)}
	}
	switch w.Expected.Kind {
	case ExpectAny:
		out.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: empty}
		out.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: empty}
	case ExpectStreamExists:
		out.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: empty}
		out.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: empty}
	case ExpectNoStream:
		out.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: ^uint64(0)}
		out.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: empty}
	default:
		out.ExpectedRevisionOption_20_6_0 = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: w.Expected.Revision}
		out.ExpectedRevisionOption = &streams.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: w.Expected.Revision}
	}
	return &streams.AppendResp{Result: &streams.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: out}}
}

func idFromProto(u *shared.UUID) ([16]byte, bool) {
	var id [16]byte
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		putUint64BE(id[:8], uint64(v.Structured.GetMostSignificantBits()))
		putUint64BE(id[8:], uint64(v.Structured.GetLeastSignificantBits()))
		return id, true
	case *shared.UUID_String_:
		return parseUUID(v.String_)
	}
	return id, false
}

func idToProto(id [16]byte, structured bool) *shared.UUID {
	if !structured {
		return &shared.UUID{Value: &shared.UUID_String_{String_: formatUUID(id)}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(getUint64BE(id[:8])),
		LeastSignificantBits: int64(getUint64BE(id[8:])),
	}}}
}
