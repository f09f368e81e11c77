package store

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// batchConn appends through KurrentDB's BatchAppend RPC: one long-lived
// bidirectional call carries the appends to every stream, each a request
// with its own correlation id, expected revision and events, answered on its
// own. The official Go client v4.2.0 never calls it (its AppendToStream
// opens a gRPC stream per append); the .NET client appends through it.
// Semantics per append are those of Append: atomic per request, the same
// expected-revision and idempotency rules, so the appender's loop in
// stream.go is unchanged.
//
// The call is opened on first use and again after it fails; a failure
// fails every append waiting on it with a transient error (retried with the
// same ids and expected revision, which the server answers idempotently).
type batchConn struct {
	conn   *grpc.ClientConn // the node appends go to; a cluster's leader (nil until found, leader.go)
	leader *leaderFinder    // nil for a single node
	auth   string           // "Basic …" when the connection string has credentials
	log    *slog.Logger

	// supported: 0 unknown, 1 yes, -1 no (the server does not list
	// batchappend). probeMu lets one append ask while the others wait.
	supported atomic.Int32
	probeMu   sync.Mutex

	mu     sync.Mutex
	call   *batchCall
	closed bool
}

// batchCall is one BatchAppend call and the appends waiting on its answers.
type batchCall struct {
	conn   *grpc.ClientConn  // the node it was opened on
	stream grpc.ClientStream // requests: rawRequest; answers: BatchAppendResp
	cancel context.CancelFunc
	sendMu sync.Mutex // grpc-go: one Send at a time

	mu      sync.Mutex
	pending map[uuid.UUID]chan batchResult
	err     error // why the call ended; set once
}

type batchResult struct {
	resp *streams.BatchAppendResp
	err  error
}

var batchAppendDesc = &grpc.StreamDesc{StreamName: "BatchAppend", ServerStreams: true, ClientStreams: true}

// errBatchUnsupported: the server does not list BatchAppend; the appender
// uses AppendToStream.
var errBatchUnsupported = errors.New("the store does not support BatchAppend")

// newBatchConn makes the connection the official client would make for cfg
// (TLS, client certificate, keepalive, message size); for a cluster
// connection string (gossip seeds or DNS discovery) it connects to the
// leader, which it finds by gossip when the first append needs it
// (leader.go).
func newBatchConn(cfg *esdb.Configuration, log *slog.Logger) (*batchConn, error) {
	if cfg == nil || (cfg.Address == "" && len(cfg.GossipSeeds) == 0) {
		return nil, nil
	}
	var creds credentials.TransportCredentials
	if cfg.DisableTLS {
		creds = insecure.NewCredentials()
	} else {
		tc := &tls.Config{InsecureSkipVerify: cfg.SkipCertificateVerification, RootCAs: cfg.RootCAs}
		if cfg.UserCertFile != "" && cfg.UserKeyFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.UserCertFile, cfg.UserKeyFile)
			if err != nil {
				return nil, fmt.Errorf("store: loading the client certificate %s: %w", cfg.UserCertFile, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(17 << 20)),
	}
	if cfg.KeepAliveInterval >= 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: max(cfg.KeepAliveInterval, 10*time.Second), Timeout: cfg.KeepAliveTimeout, PermitWithoutStream: true,
		}))
	}
	b := &batchConn{log: log}
	if cfg.Username != "" {
		b.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password))
	}
	if isCluster(cfg) {
		b.leader = newLeaderFinder(cfg, opts, b, log)
		return b, nil
	}
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: connecting to %s for BatchAppend: %w", cfg.Address, err)
	}
	b.conn = conn
	return b, nil
}

func (b *batchConn) ctx(parent context.Context) context.Context {
	if b.leader != nil {
		parent = requireLeader(parent)
	}
	if b.auth == "" {
		return parent
	}
	return metadata.AppendToOutgoingContext(parent, "authorization", b.auth)
}

// Close ends the call (waiting appends fail with ErrClosed) and the connection.
func (b *batchConn) Close() error {
	b.mu.Lock()
	b.closed = true
	c, conn := b.call, b.conn
	b.call, b.conn = nil, nil
	b.mu.Unlock()
	if c != nil {
		c.end(ErrClosed)
	}
	if conn == nil {
		return nil
	}
	return conn.Close()
}

// checkSupported asks the server once whether it lists BatchAppend (again
// after a failed ask); concurrent appends wait for the one asking.
func (b *batchConn) checkSupported(ctx context.Context) error {
	known := func() (bool, error) {
		switch b.supported.Load() {
		case 1:
			return true, nil
		case -1:
			return true, errBatchUnsupported
		}
		return false, nil
	}
	if ok, err := known(); ok {
		return err
	}
	b.probeMu.Lock()
	defer b.probeMu.Unlock()
	if ok, err := known(); ok {
		return err
	}
	conn, err := b.node(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(b.ctx(ctx), 5*time.Second)
	defer cancel()
	ms, err := serverfeatures.NewServerFeaturesClient(conn).GetSupportedMethods(cctx, &shared.Empty{})
	found := false
	switch status.Code(err) {
	case codes.OK:
		for _, m := range ms.GetMethods() {
			if m.GetServiceName() == "event_store.client.streams.streams" && m.GetMethodName() == "batchappend" {
				found = true
			}
		}
	case codes.Unimplemented, codes.NotFound:
	default:
		return err
	}
	if found {
		b.supported.Store(1)
		b.log.Info("appending through BatchAppend (one call for every stream)")
		return nil
	}
	b.supported.Store(-1)
	b.log.Info("the store does not list BatchAppend; appending with one Append call per stream")
	return errBatchUnsupported
}

// current returns the open call, opening one if there is none.
func (b *batchConn) current(ctx context.Context) (*batchCall, error) {
	conn, err := b.node(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if b.call != nil {
		return b.call, nil
	}
	cctx, cancel := context.WithCancel(b.ctx(context.Background()))
	st, err := conn.NewStream(cctx, batchAppendDesc, streams.Streams_BatchAppend_FullMethodName, grpc.ForceCodec(batchCodec{}))
	if err != nil {
		cancel()
		return nil, err
	}
	c := &batchCall{conn: conn, stream: st, cancel: cancel, pending: make(map[uuid.UUID]chan batchResult)}
	b.call = c
	go b.receive(c)
	return c, nil
}

// receive hands each answer to the append waiting on its correlation id,
// until the call fails.
func (b *batchConn) receive(c *batchCall) {
	for {
		resp := new(streams.BatchAppendResp)
		err := c.stream.RecvMsg(resp)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the store ended the BatchAppend call")
			}
			b.followLeader(c, err)
			b.drop(c, err)
			return
		}
		id, ok := fromProtoUUID(resp.GetCorrelationId())
		if !ok {
			b.log.Warn("BatchAppend answer with an unreadable correlation id; ignored", "stream", resp.GetStreamIdentifier().GetStreamName())
			continue
		}
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- batchResult{resp: resp}
		}
	}
}

// drop forgets the failed call c (the next append opens a new one) and
// ends it with err.
func (b *batchConn) drop(c *batchCall, err error) {
	b.mu.Lock()
	if b.call == c {
		b.call = nil
	}
	b.mu.Unlock()
	c.end(err)
}

// end fails every waiting append with err and cancels the call.
func (c *batchCall) end(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		for id, ch := range c.pending {
			ch <- batchResult{err: err}
			delete(c.pending, id)
		}
	}
	c.mu.Unlock()
	c.cancel()
}

// append appends events to stream with the expected revision and returns
// the stream's new revision. Errors are *batchError (the store's answer) or
// transport errors (transient).
func (b *batchConn) append(ctx context.Context, stream string, expected esdb.ExpectedRevision, events []esdb.EventData) (uint64, error) {
	if err := b.checkSupported(ctx); err != nil {
		return 0, err
	}
	c, err := b.current(ctx)
	if err != nil {
		return 0, err
	}
	id := uuid.New()
	ch := make(chan batchResult, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, c.err
	}
	c.pending[id] = ch
	c.mu.Unlock()

	req := encodeBatchRequest(id, stream, expected, events)
	c.sendMu.Lock()
	err = c.stream.SendMsg(&req)
	c.sendMu.Unlock()
	if err != nil {
		// Send's error is io.EOF when the call ended; its cause is Recv's.
		b.drop(c, err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return 0, r.err
		}
		return batchOutcome(stream, r.resp)
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return 0, ctx.Err()
	}
}

// batchOutcome reads one answer: the new revision, or a *batchError.
func batchOutcome(stream string, resp *streams.BatchAppendResp) (uint64, error) {
	if s := resp.GetSuccess(); s != nil {
		if _, none := s.GetCurrentRevisionOption().(*streams.BatchAppendResp_Success_NoStream); none {
			return 0, &batchError{stream: stream, kind: kindTransient, msg: "the store answered success with no revision"}
		}
		return s.GetCurrentRevision(), nil
	}
	st := resp.GetError()
	e := &batchError{stream: stream, code: codes.Code(st.GetCode()), msg: st.GetMessage(), kind: kindTransient}
	for _, d := range st.GetDetails() {
		if r, ok := maxEventSizeDetail(d); ok {
			e.kind, e.refusal = kindTooLarge, r
			continue
		}
		m, err := d.UnmarshalNew()
		if err != nil {
			continue
		}
		switch m := m.(type) {
		case *shared.WrongExpectedVersion:
			e.kind = kindWrongVersion
		case *shared.StreamDeleted:
			e.kind = kindDeleted
		case *shared.MaximumAppendSizeExceeded:
			e.kind, e.refusal = kindTooLarge, refusal{limit: int(m.GetMaxAppendSize())}
		case *shared.AccessDenied:
			e.kind, e.fix = kindFatal, "check the store credentials (store.username / store.password) and the stream's ACL"
		case *shared.BadRequest:
			e.kind, e.fix = kindFatal, "the store refused the request as malformed: report this as a Chronicler bug"
		}
	}
	return 0, e
}

// batchError is the store's error answer to one BatchAppend request.
type batchError struct {
	stream  string
	code    codes.Code
	msg     string
	kind    appendKind
	fix     string
	refusal refusal // with kindTooLarge
}

func (e *batchError) Error() string {
	s := fmt.Sprintf("append to %s: %s: %s", e.stream, e.code, e.msg)
	if e.fix != "" {
		s += " (" + e.fix + ")"
	}
	return s
}

func contentType(t esdb.ContentType) string {
	if t == esdb.ContentTypeJson {
		return "application/json"
	}
	return "application/octet-stream"
}

func fromProtoUUID(u *shared.UUID) (uuid.UUID, bool) {
	if s := u.GetStructured(); s != nil {
		id, err := esdb.ParseUUIDFromInt64(s.GetMostSignificantBits(), s.GetLeastSignificantBits())
		return id, err == nil
	}
	id, err := uuid.Parse(u.GetString_())
	return id, err == nil
}
