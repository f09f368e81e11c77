package kurrentdb_test

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FuzzBatchAppendRequest sends one arbitrary BatchAppendReq (the fuzz input
// is its wire encoding), then a valid request, then closes the call. Whatever
// the first request holds, the server must answer the valid one with
// success, answer the arbitrary one at most once and only under its own
// correlation id, and end the call cleanly.
//
//	go test -run '^$' -fuzz FuzzBatchAppendRequest -fuzztime 60s ./test/kurrentdb/
func FuzzBatchAppendRequest(f *testing.F) {
	full := batchOne(uuid.New(), "fuzz-a", uuid.New())
	seeds := []*streams.BatchAppendReq{full, {}, {CorrelationId: full.CorrelationId}}
	add := func(mut func(r *streams.BatchAppendReq)) {
		r := proto.Clone(full).(*streams.BatchAppendReq)
		mut(r)
		seeds = append(seeds, r)
	}
	add(func(r *streams.BatchAppendReq) { r.IsFinal = false })
	add(func(r *streams.BatchAppendReq) { r.Options = nil })
	add(func(r *streams.BatchAppendReq) { r.Options.StreamIdentifier = nil })
	add(func(r *streams.BatchAppendReq) { r.Options.ExpectedStreamPosition = nil })
	add(func(r *streams.BatchAppendReq) {
		r.Options.ExpectedStreamPosition = &streams.BatchAppendReq_Options_StreamPosition{StreamPosition: 7}
	})
	add(func(r *streams.BatchAppendReq) {
		r.Options.DeadlineOption = &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(-time.Second)}
	})
	add(func(r *streams.BatchAppendReq) {
		r.Options.DeadlineOption = &streams.BatchAppendReq_Options_Deadline_21_10_0{Deadline_21_10_0: &timestamppb.Timestamp{Seconds: 1 << 40}}
	})
	add(func(r *streams.BatchAppendReq) { r.Options.DeadlineOption = &streams.BatchAppendReq_Options_Deadline{} })
	add(func(r *streams.BatchAppendReq) { r.CorrelationId = &shared.UUID{Value: &shared.UUID_Structured_{}} })
	add(func(r *streams.BatchAppendReq) { r.ProposedMessages[0].Id = nil })
	add(func(r *streams.BatchAppendReq) { r.ProposedMessages[0].Metadata = nil })
	add(func(r *streams.BatchAppendReq) { r.Options.StreamIdentifier.StreamName = []byte("$$fuzz-a") })
	add(func(r *streams.BatchAppendReq) { r.Options.StreamIdentifier.StreamName = nil })
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	srv := kurrentdbtest.Start(f, kurrentdb.Options{})
	f.Fuzz(func(t *testing.T, wire []byte) {
		req := &streams.BatchAppendReq{}
		if err := proto.Unmarshal(wire, req); err != nil {
			t.Skip("not a BatchAppendReq")
		}
		call, _ := batchCall(t, srv)
		barrier := uuid.New()
		send(t, call, req)
		send(t, call, batchOne(barrier, "fuzz-barrier", uuid.New()))
		if err := call.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var fuzzed, barriers int
		for {
			a, err := call.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("call ended with %v, want a clean end", err)
			}
			switch {
			case answerID(a) == barrier:
				barriers++
				if a.GetSuccess() == nil {
					t.Fatalf("valid request answered %v", a)
				}
			case proto.Equal(a.GetCorrelationId(), req.GetCorrelationId()):
				fuzzed++
			default:
				t.Fatalf("answer %v names neither correlation id sent", a)
			}
		}
		if barriers != 1 || fuzzed > 1 {
			t.Fatalf("answers: %d for the valid request, %d for the arbitrary one; want 1 and at most 1", barriers, fuzzed)
		}
	})
}
