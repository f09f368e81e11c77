package conformance_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The official Go client never calls BatchAppend, so these helpers speak it
// over a raw gRPC connection built from the suite's esdb:// URL (address,
// TLS and credentials as esdb.ParseConnectionString reads them).

// grpcConn opens a gRPC connection to the server under test, closed when
// the test ends.
func grpcConn(t testing.TB) *grpc.ClientConn { return grpcConnTo(t, serverURL) }

// grpcConnTo is grpcConn for the server of url, with url's TLS settings and
// credentials.
func grpcConnTo(t testing.TB, url string) *grpc.ClientConn {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		t.Fatalf("parsing %q: %v", url, err)
	}
	if cfg.Address == "" {
		t.Fatalf("%q names no single node (gossip seeds are not supported by the BatchAppend tests): use esdb://host:port", url)
	}
	creds := insecure.NewCredentials()
	if !cfg.DisableTLS {
		creds = credentials.NewTLS(&tls.Config{RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.SkipCertificateVerification})
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.Username != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(basicAuth{
			header: "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)),
			tls:    !cfg.DisableTLS,
		}))
	}
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		t.Fatalf("gRPC connection to %s: %v", cfg.Address, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

type basicAuth struct {
	header string
	tls    bool
}

func (b basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": b.header}, nil
}

func (b basicAuth) RequireTransportSecurity() bool { return b.tls }

// batchSession is one BatchAppend call: the test sends requests from one
// goroutine; a receiver goroutine files every answer by correlation id.
type batchSession struct {
	call   streams.Streams_BatchAppendClient
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	byID    map[uuid.UUID][]*streams.BatchAppendResp
	arrived []*streams.BatchAppendResp // in arrival order
	err     error                      // what ended the response stream (io.EOF: a clean end)
	changed chan struct{}              // closed and replaced on every change
}

// openBatch starts a BatchAppend call on conn (a new connection if nil),
// cancelled when the test ends.
func openBatch(t testing.TB, conn *grpc.ClientConn) *batchSession {
	t.Helper()
	if conn == nil {
		conn = grpcConn(t)
	}
	c, cancel := context.WithCancel(ctx(t))
	call, err := streams.NewStreamsClient(conn).BatchAppend(c)
	if err != nil {
		cancel()
		t.Fatalf("BatchAppend: %v", err)
	}
	b := &batchSession{call: call, cancel: cancel, done: make(chan struct{}),
		byID: map[uuid.UUID][]*streams.BatchAppendResp{}, changed: make(chan struct{})}
	go b.receive()
	t.Cleanup(func() { cancel(); <-b.done })
	return b
}

func (b *batchSession) receive() {
	defer close(b.done)
	for {
		a, err := b.call.Recv()
		b.mu.Lock()
		if err != nil {
			b.err = err
		} else {
			id := uuidOf(a.GetCorrelationId())
			b.byID[id] = append(b.byID[id], a)
			b.arrived = append(b.arrived, a)
		}
		close(b.changed)
		b.changed = make(chan struct{})
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (b *batchSession) send(t testing.TB, req *streams.BatchAppendReq) {
	t.Helper()
	if err := b.call.Send(req); err != nil {
		t.Fatalf("BatchAppend send: %v", err)
	}
}

// waitFor blocks until cond (called under the lock) holds, the response
// stream ends, or the test's deadline passes.
func (b *batchSession) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := ctx(t)
	for {
		b.mu.Lock()
		ok, err, ch := cond(), b.err, b.changed
		b.mu.Unlock()
		if ok {
			return
		}
		if err != nil {
			t.Fatalf("waiting for %s: the response stream ended: %v", what, err)
		}
		select {
		case <-ch:
		case <-deadline.Done():
			t.Fatalf("waiting for %s: no answer before the test's deadline", what)
		}
	}
}

// await returns the first answer for correlation id id.
func (b *batchSession) await(t testing.TB, id uuid.UUID) *streams.BatchAppendResp {
	t.Helper()
	b.waitFor(t, "the answer to "+id.String(), func() bool { return len(b.byID[id]) > 0 })
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byID[id][0]
}

// answers returns every answer received so far for id.
func (b *batchSession) answers(id uuid.UUID) []*streams.BatchAppendResp {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*streams.BatchAppendResp(nil), b.byID[id]...)
}

// append sends one complete request and returns its answer.
func (b *batchSession) append(t testing.TB, stream string, exp esdb.ExpectedRevision, events ...esdb.EventData) *streams.BatchAppendResp {
	t.Helper()
	id := uuid.New()
	b.send(t, batchReq(id, batchOptions(stream, exp), events, true))
	return b.await(t, id)
}

// uuidOf reads a UUID in either wire form (the real server answers some
// requests with the structured form); uuid.Nil when absent or invalid.
func uuidOf(u *shared.UUID) uuid.UUID {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], uint64(st.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(id[8:], uint64(st.GetLeastSignificantBits()))
		return id
	}
	id, _ := uuid.Parse(u.GetString_())
	return id
}

func corrID(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}}
}

func batchReq(id uuid.UUID, opts *streams.BatchAppendReq_Options, events []esdb.EventData, final bool) *streams.BatchAppendReq {
	return &streams.BatchAppendReq{CorrelationId: corrID(id), Options: opts, ProposedMessages: proposedMsgs(events), IsFinal: final}
}

func batchOptions(stream string, exp esdb.ExpectedRevision) *streams.BatchAppendReq_Options {
	o := &streams.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
	switch e := exp.(type) {
	case esdb.Any:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}
	case esdb.NoStream:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
	case esdb.StreamExists:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_StreamExists{StreamExists: &emptypb.Empty{}}
	case esdb.StreamRevision:
		o.ExpectedStreamPosition = &streams.BatchAppendReq_Options_StreamPosition{StreamPosition: e.Value}
	default:
		panic("batchOptions: unknown expected revision")
	}
	return o
}

func proposedMsgs(events []esdb.EventData) []*streams.BatchAppendReq_ProposedMessage {
	out := make([]*streams.BatchAppendReq_ProposedMessage, len(events))
	for i, e := range events {
		ct := "application/octet-stream"
		if e.ContentType == esdb.ContentTypeJson {
			ct = "application/json"
		}
		out[i] = &streams.BatchAppendReq_ProposedMessage{
			Id:             &shared.UUID{Value: &shared.UUID_String_{String_: e.EventID.String()}},
			Metadata:       map[string]string{"type": e.EventType, "content-type": ct},
			CustomMetadata: e.Metadata,
			Data:           e.Data,
		}
	}
	return out
}

// successOf returns a's success or fails the test with its error.
func successOf(t testing.TB, a *streams.BatchAppendResp) *streams.BatchAppendResp_Success {
	t.Helper()
	if s := a.GetSuccess(); s != nil {
		return s
	}
	t.Fatalf("batch append to %q: error %v, want success", a.GetStreamIdentifier().GetStreamName(), a.GetError())
	return nil
}

// errorOf returns a's error status after checking its code, or fails.
func errorOf(t testing.TB, a *streams.BatchAppendResp, want codes.Code) *rpcstatus.Status {
	t.Helper()
	st := a.GetError()
	if st == nil {
		t.Fatalf("batch append to %q: success %v, want error %v", a.GetStreamIdentifier().GetStreamName(), a.GetSuccess(), want)
	}
	if codes.Code(st.GetCode()) != want {
		t.Fatalf("batch append to %q: error code %v (%q), want %v", a.GetStreamIdentifier().GetStreamName(), codes.Code(st.GetCode()), st.GetMessage(), want)
	}
	return st
}

// detailOf unpacks the status's only detail into a new T, failing if it
// holds another message type.
func detailOf[T proto.Message](t testing.TB, st *rpcstatus.Status) T {
	t.Helper()
	var zero T
	if len(st.GetDetails()) != 1 {
		t.Fatalf("status %v: %d details, want 1", st, len(st.GetDetails()))
	}
	m, err := st.GetDetails()[0].UnmarshalNew()
	if err != nil {
		t.Fatalf("status detail %v: %v", st.GetDetails()[0].GetTypeUrl(), err)
	}
	d, ok := m.(T)
	if !ok {
		t.Fatalf("status detail is %T, want %T", m, zero)
	}
	return d
}

// streamEvents reads stream and returns its events; a missing stream is empty.
func streamEvents(t testing.TB, stream string) []*esdb.ResolvedEvent {
	t.Helper()
	got, err := readStream(t, stream, esdb.ReadStreamOptions{}, 100_000)
	if err != nil && !errors.Is(err, io.EOF) && codeOf(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("reading %s: %v", stream, err)
	}
	return got
}
