package kurrentdb_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Emulator-only BatchAppend tests: fault injection, ordering under injected
// jitter, and the end of the call, where this server's behaviour is chosen
// (doc.go) rather than the real server's. The protocol itself is covered by
// the conformance suite.

// grpcConn is a raw gRPC connection to srv (the official client has no
// BatchAppend), closed when the test ends.
func grpcConn(t testing.TB, srv *kurrentdb.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func batchCall(t *testing.T, srv *kurrentdb.Server) (streams.Streams_BatchAppendClient, context.CancelFunc) {
	t.Helper()
	conn := grpcConn(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	call, err := streams.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return call, cancel
}

// batchOne is a complete one-event request (expected any) for stream.
func batchOne(id uuid.UUID, stream string, event uuid.UUID) *streams.BatchAppendReq {
	return &streams.BatchAppendReq{
		CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
		Options: &streams.BatchAppendReq_Options{
			StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
			ExpectedStreamPosition: &streams.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}},
		},
		ProposedMessages: []*streams.BatchAppendReq_ProposedMessage{{
			Id:       &shared.UUID{Value: &shared.UUID_String_{String_: event.String()}},
			Metadata: map[string]string{"type": "Batched", "content-type": "application/json"},
			Data:     []byte(`{}`),
		}},
		IsFinal: true,
	}
}

func send(t *testing.T, call streams.Streams_BatchAppendClient, req *streams.BatchAppendReq) {
	t.Helper()
	if err := call.Send(req); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func recv(t *testing.T, call streams.Streams_BatchAppendClient) *streams.BatchAppendResp {
	t.Helper()
	a, err := call.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return a
}

func answerID(a *streams.BatchAppendResp) uuid.UUID {
	id, _ := uuid.Parse(a.GetCorrelationId().GetString_())
	return id
}

// TestBatchAppendInjectedErrors: injected faults apply per batch-append
// request: Unavailable is answered as not-ready (code Unavailable), Aborted
// as Timeout (DeadlineExceeded), each for that correlation id only, and the
// events are stored only with FailAfterCommit.
func TestBatchAppendInjectedErrors(t *testing.T) {
	cases := []struct {
		name   string
		faults kurrentdb.Faults
		want   codes.Code
		stored bool
	}{
		{"unavailable", kurrentdb.Faults{UnavailableRate: 1}, codes.Unavailable, false},
		{"aborted", kurrentdb.Faults{AbortedRate: 1}, codes.DeadlineExceeded, false},
		{"unavailable after commit", kurrentdb.Faults{UnavailableRate: 1, FailAfterCommit: true}, codes.Unavailable, true},
		{"aborted after commit, with latency", kurrentdb.Faults{AbortedRate: 1, FailAfterCommit: true, AppendLatency: time.Millisecond, AppendLatencyJitter: time.Millisecond}, codes.DeadlineExceeded, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := kurrentdbtest.Start(t, kurrentdb.Options{})
			db := kurrentdbtest.Client(t, srv.URL())
			if err := srv.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			call, _ := batchCall(t, srv)
			ids := map[uuid.UUID]uuid.UUID{} // correlation -> event
			for i := range 3 {
				id, ev := uuid.New(), uuid.New()
				ids[id] = ev
				send(t, call, batchOne(id, fmt.Sprintf("faulty-%d", i), ev))
			}
			for range 3 {
				a := recv(t, call)
				if _, ok := ids[answerID(a)]; !ok {
					t.Fatalf("answer for unknown or already answered correlation id %v", answerID(a))
				}
				if got := codes.Code(a.GetError().GetCode()); a.GetError() == nil || got != tc.want {
					t.Fatalf("answer %v, want error %v", a, tc.want)
				}
				delete(ids, answerID(a))
			}
			for i := range 3 {
				stored := len(readIDs(t, db, fmt.Sprintf("faulty-%d", i))) == 1
				if stored != tc.stored {
					t.Fatalf("faulty-%d stored: %v, want %v", i, stored, tc.stored)
				}
			}
			if err := srv.SetFaults(kurrentdb.Faults{}); err != nil {
				t.Fatal(err)
			}
			id := uuid.New()
			send(t, call, batchOne(id, "faulty-0", uuid.New()))
			if a := recv(t, call); a.GetSuccess() == nil || answerID(a) != id {
				t.Fatalf("after clearing faults: %v, want success for %v", a, id)
			}
		})
	}
}

// TestBatchAppendLatencyAndOrder: injected latency applies to a batch
// append (with 1 h of latency it stays unwritten and unanswered), a later
// request to the same stream waits behind it, a request to another stream
// does not; when the client cancels, neither waiting write is performed
// (checked after a restart on the same data directory).
func TestBatchAppendLatencyAndOrder(t *testing.T) {
	dir := t.TempDir()
	srv, err := kurrentdb.Start(kurrentdb.Options{DataDir: dir, Faults: kurrentdb.Faults{AppendLatency: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	call, cancel := batchCall(t, srv)
	slow := uuid.New()
	send(t, call, batchOne(slow, "slow", uuid.New()))
	// A request answered in the receive loop (deadline 0) proves the server
	// has taken the slow request, with its faults, before we clear them.
	barrierID := uuid.New()
	barrier := batchOne(barrierID, "barrier", uuid.New())
	barrier.Options.DeadlineOption = &streams.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(0)}
	send(t, call, barrier)
	if a := recv(t, call); answerID(a) != barrierID || codes.Code(a.GetError().GetCode()) != codes.DeadlineExceeded {
		t.Fatalf("first answer %v, want Timeout for the barrier", a)
	}
	if err := srv.SetFaults(kurrentdb.Faults{}); err != nil {
		t.Fatal(err)
	}
	behind, other := uuid.New(), uuid.New()
	send(t, call, batchOne(behind, "slow", uuid.New()))
	send(t, call, batchOne(other, "other", uuid.New()))
	if a := recv(t, call); answerID(a) != other || a.GetSuccess() == nil {
		t.Fatalf("answer %v, want success for the other stream's request %v (slow %v, behind %v)", a, other, slow, behind)
	}
	db := kurrentdbtest.Client(t, srv.URL())
	if n := len(readIDs(t, db, "slow")); n != 0 {
		t.Fatalf("slow stream has %d events while its first append sleeps", n)
	}
	cancel()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv2 := kurrentdbtest.Start(t, kurrentdb.Options{DataDir: dir})
	db2 := kurrentdbtest.Client(t, srv2.URL())
	if n := len(readIDs(t, db2, "slow")); n != 0 {
		t.Fatalf("slow stream has %d events after the call was cancelled, want 0", n)
	}
	if n := len(readIDs(t, db2, "other")); n != 1 {
		t.Fatalf("other stream has %d events, want 1", n)
	}
}

// TestBatchAppendOrderUnderJitter: with random per-request latency, appends
// to one stream from many in-flight correlation ids are still applied in
// the order received (answer revisions and stream contents).
func TestBatchAppendOrderUnderJitter(t *testing.T) {
	const nStreams, perStream = 8, 25
	srv := kurrentdbtest.Start(t, kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatencyJitter: 2 * time.Millisecond}})
	db := kurrentdbtest.Client(t, srv.URL())
	call, _ := batchCall(t, srv)
	type sent struct {
		stream string
		k      int
		event  uuid.UUID
	}
	byID := map[uuid.UUID]sent{}
	want := map[string][]uuid.UUID{}
	for k := range perStream {
		for s := range nStreams {
			id, ev := uuid.New(), uuid.New()
			name := fmt.Sprintf("jitter-%d", s)
			byID[id] = sent{name, k, ev}
			want[name] = append(want[name], ev)
			send(t, call, batchOne(id, name, ev))
		}
	}
	if err := call.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for range nStreams * perStream {
		a := recv(t, call)
		r, ok := byID[answerID(a)]
		if !ok {
			t.Fatalf("answer for unknown or already answered correlation id %v", answerID(a))
		}
		delete(byID, answerID(a))
		if a.GetSuccess().GetCurrentRevision() != uint64(r.k) || a.GetSuccess() == nil {
			t.Fatalf("%s #%d answered %v, want revision %d", r.stream, r.k, a, r.k)
		}
	}
	for name, ids := range want {
		if got := readIDs(t, db, name); !slices.Equal(got, ids) {
			t.Fatalf("%s = %v, want %v", name, got, ids)
		}
	}
}

// TestBatchAppendCloseSend: when the client closes its side, the server
// answers every complete request, answers an incomplete one Timeout (it can
// no longer complete), then ends the response stream cleanly.
func TestBatchAppendCloseSend(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{Faults: kurrentdb.Faults{AppendLatencyJitter: time.Millisecond}})
	call, _ := batchCall(t, srv)
	pending := map[uuid.UUID]codes.Code{}
	for i := range 50 {
		id := uuid.New()
		pending[id] = codes.OK
		send(t, call, batchOne(id, fmt.Sprintf("close-%d", i%5), uuid.New()))
	}
	openID := uuid.New()
	open := batchOne(openID, "close-open", uuid.New())
	open.IsFinal = false
	pending[openID] = codes.DeadlineExceeded
	send(t, call, open)
	if err := call.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		a, err := call.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		want, ok := pending[answerID(a)]
		if !ok {
			t.Fatalf("answer for unknown or already answered correlation id %v", answerID(a))
		}
		delete(pending, answerID(a))
		if got := codes.Code(a.GetError().GetCode()); got != want {
			t.Fatalf("answer %v: code %v, want %v", a, got, want)
		}
	}
	if len(pending) != 0 {
		t.Fatalf("stream ended with %d requests unanswered", len(pending))
	}
}

// TestBatchAppendNotLeader: with the not-leader fault on, a complete
// request ends the call with the not-leader status and trailers naming the
// leader, as the real server fails the whole call.
func TestBatchAppendNotLeader(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{Faults: kurrentdb.Faults{NotLeader: true, LeaderAddr: "10.1.2.3:2113"}})
	call, _ := batchCall(t, srv)
	send(t, call, batchOne(uuid.New(), "follower", uuid.New()))
	_, err := call.Recv()
	if status.Code(err) != codes.NotFound {
		t.Fatalf("recv: %v, want NotFound (not leader)", err)
	}
	tr := call.Trailer()
	if got := tr.Get("exception"); !slices.Equal(got, []string{"not-leader"}) {
		t.Fatalf("exception trailer %v, want not-leader", got)
	}
	if h, p := tr.Get("leader-endpoint-host"), tr.Get("leader-endpoint-port"); !slices.Equal(h, []string{"10.1.2.3"}) || !slices.Equal(p, []string{"2113"}) {
		t.Fatalf("leader trailers %v:%v, want 10.1.2.3:2113", h, p)
	}
}

// TestBatchAppendClose: Close ends an open BatchAppend call (clients keep
// one open for their lifetime) with the handler's own Unavailable "shutting
// down" after its pending write is answered; the write is stored. (Were the
// call not ended, Close would stop the transport hard after 5 s, and the
// client would see a transport error instead of that status.)
func TestBatchAppendClose(t *testing.T) {
	dir := t.TempDir()
	srv, err := kurrentdb.Start(kurrentdb.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	call, _ := batchCall(t, srv)
	id := uuid.New()
	send(t, call, batchOne(id, "closing", uuid.New()))
	if a := recv(t, call); answerID(a) != id || a.GetSuccess() == nil {
		t.Fatalf("answer %v, want success for %v", a, id)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := call.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "shutting down") {
		t.Fatalf("recv after Close: %v, want the handler's Unavailable \"shutting down\"", err)
	}
	srv2 := kurrentdbtest.Start(t, kurrentdb.Options{DataDir: dir})
	if n := len(readIDs(t, kurrentdbtest.Client(t, srv2.URL()), "closing")); n != 1 {
		t.Fatalf("closing stream has %d events after restart, want 1", n)
	}
}

// TestBatchAppendNotDropped: DropSubscriptions ends subscriptions only; an
// open BatchAppend call keeps working (doc.go: "DropSubscriptions does not
// touch them").
func TestBatchAppendNotDropped(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	call, _ := batchCall(t, srv)
	first := uuid.New()
	send(t, call, batchOne(first, "not-dropped", uuid.New()))
	if a := recv(t, call); answerID(a) != first || a.GetSuccess() == nil {
		t.Fatalf("answer %v, want success for %v", a, first)
	}
	srv.DropSubscriptions()
	second := uuid.New()
	send(t, call, batchOne(second, "not-dropped", uuid.New()))
	if a := recv(t, call); answerID(a) != second || a.GetSuccess() == nil {
		t.Fatalf("answer after DropSubscriptions %v, want success for %v", a, second)
	}
	if n := len(readIDs(t, kurrentdbtest.Client(t, srv.URL()), "not-dropped")); n != 2 {
		t.Fatalf("not-dropped stream has %d events, want 2", n)
	}
}

// TestNoBatchAppend: with Options.NoBatchAppend (a server before 21.10)
// ServerFeatures does not list batchappend and a BatchAppend call ends
// Unimplemented; the other Streams methods are still listed.
func TestNoBatchAppend(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{NoBatchAppend: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := serverfeatures.NewServerFeaturesClient(grpcConn(t, srv)).GetSupportedMethods(ctx, &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, m := range got.GetMethods() {
		if m.GetServiceName() == "event_store.client.streams.streams" {
			methods = append(methods, m.GetMethodName())
		}
	}
	if want := []string{"read", "append", "delete", "tombstone"}; !slices.Equal(methods, want) {
		t.Fatalf("Streams methods listed %v, want %v", methods, want)
	}
	call, _ := batchCall(t, srv)
	if _, err := call.Recv(); status.Code(err) != codes.Unimplemented {
		t.Fatalf("recv: %v, want Unimplemented", err)
	}
}
