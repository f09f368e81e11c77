package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
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
	// done ends what waits for the connection (a leader search) on Close.
	done   context.Context
	cancel context.CancelFunc

	// supported: 0 unknown, 1 yes, -1 no (the server does not list
	// batchappend). probeMu lets one append ask while the others wait.
	supported atomic.Int32
	probeMu   sync.Mutex

	// Correlation ids are (idBase, the next idSeq): unique per connection
	// without reading the system's random source per append.
	idBase uint64
	idSeq  atomic.Uint64

	mu     sync.Mutex
	call   *batchCall
	closed bool

	// The sender's queue (appendAsync): appends sent by one goroutine, back
	// to back, so gRPC writes several in one go.
	qmu     sync.Mutex
	queue   []asyncAppend
	spare   []asyncAppend
	qclosed bool
	sending bool          // the sender runs
	wake    chan struct{} // buffered: work was queued
}

// batchCall is one BatchAppend call and the appends waiting on its answers.
type batchCall struct {
	conn   *grpc.ClientConn  // the node it was opened on
	stream grpc.ClientStream // requests: rawRequest; answers: BatchAppendResp
	cancel context.CancelFunc
	sendMu sync.Mutex // grpc-go: one Send at a time

	mu      sync.Mutex
	pending map[corrID]func(batchResult) // called once, with the answer or the call's error
	err     error                        // why the call ended; set once
}

// corrID is a correlation id as its two halves travel (UUID.Structured).
type corrID struct{ most, least uint64 }

// batchResult is an append's answer: the stream's new revision, or the
// whole answer when it is not a plain success (slow), or the call's error.
type batchResult struct {
	rev  uint64
	slow *streams.BatchAppendResp
	err  error
}

// resultChans recycles the channels blocking appends wait on; one goes back
// only once its answer was taken from it (an append that gave up leaves its
// channel to the collector, since a late answer may still be sent on it).
var resultChans = sync.Pool{New: func() any { return make(chan batchResult, 1) }}

// asyncAppend is an append queued for the sender (appendAsync).
type asyncAppend struct {
	stream   string
	expected esdb.ExpectedRevision
	items    []*item
	done     func(batchResult)
}

var batchAppendDesc = &grpc.StreamDesc{StreamName: "BatchAppend", ServerStreams: true, ClientStreams: true}

// errBatchUnsupported: the server does not list BatchAppend; the appender
// uses AppendToStream.
var errBatchUnsupported = errors.New("the store does not support BatchAppend")

// newBatchConn makes the connection the official client would make for cfg
// (dialDirect); for a cluster connection string (gossip seeds or DNS
// discovery) it connects to the leader, which it finds by gossip when the
// first append needs it (leader.go).
func newBatchConn(cfg *esdb.Configuration, log *slog.Logger) (*batchConn, error) {
	if cfg == nil || (cfg.Address == "" && len(cfg.GossipSeeds) == 0) {
		return nil, nil
	}
	b := &batchConn{log: log, wake: make(chan struct{}, 1)}
	b.done, b.cancel = context.WithCancel(context.Background())
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	b.idBase = binary.BigEndian.Uint64(seed[:])
	if !isCluster(cfg) {
		d, err := dialDirect(cfg, "BatchAppend")
		if err != nil {
			return nil, err
		}
		b.conn, b.auth = d.conn, d.auth
		return b, nil
	}
	opts, auth, err := directOptions(cfg)
	if err != nil {
		return nil, err
	}
	b.auth = auth
	b.leader = newLeaderFinder(cfg, opts, b, log)
	return b, nil
}

func (b *batchConn) ctx(parent context.Context) context.Context {
	if b.leader != nil {
		parent = requireLeader(parent)
	}
	return withAuth(parent, b.auth)
}

// Close ends the call (waiting appends fail with ErrClosed, queued ones
// too) and the connection.
func (b *batchConn) Close() error {
	b.qmu.Lock()
	b.qclosed = true
	b.qmu.Unlock()
	b.signal()
	b.cancel()
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
	st, err := conn.NewStream(cctx, batchAppendDesc, streams.Streams_BatchAppend_FullMethodName, grpc.ForceCodecV2(batchCodec{}))
	if err != nil {
		cancel()
		return nil, err
	}
	c := &batchCall{conn: conn, stream: st, cancel: cancel, pending: make(map[corrID]func(batchResult))}
	b.call = c
	go b.receive(c)
	return c, nil
}

// receive hands each answer to the append waiting on its correlation id,
// until the call fails.
func (b *batchConn) receive(c *batchCall) {
	var resp batchResponse
	for {
		err := c.stream.RecvMsg(&resp)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the store ended the BatchAppend call")
			}
			b.followLeader(c, err)
			b.drop(c, err)
			return
		}
		id, res := corrID{resp.most, resp.least}, batchResult{rev: resp.rev, slow: resp.slow}
		if resp.slow != nil {
			u, ok := fromProtoUUID(resp.slow.GetCorrelationId())
			if !ok {
				b.log.Warn("BatchAppend answer with an unreadable correlation id; ignored", "stream", resp.slow.GetStreamIdentifier().GetStreamName())
				continue
			}
			id.most, id.least = uuidBits(u)
		}
		c.mu.Lock()
		done := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if done != nil {
			done(res)
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
	var waiting []func(batchResult)
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		for id, done := range c.pending {
			waiting = append(waiting, done)
			delete(c.pending, id)
		}
	}
	c.mu.Unlock()
	c.cancel()
	for _, done := range waiting {
		done(batchResult{err: err})
	}
}

// appendAsync queues an append for the sender and returns at once; done is
// called once, from another goroutine, with the answer or the error. It
// needs BatchAppend known to be supported (checkSupported).
func (b *batchConn) appendAsync(a asyncAppend) {
	b.qmu.Lock()
	if b.qclosed {
		b.qmu.Unlock()
		go a.done(batchResult{err: ErrClosed})
		return
	}
	b.queue = append(b.queue, a)
	start := !b.sending
	b.sending = true
	b.qmu.Unlock()
	if start {
		go b.sendLoop()
	} else {
		b.signal()
	}
}

func (b *batchConn) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// sendLoop sends the queued appends, each batch of them back to back, until
// the connection is closed (then it fails what is queued).
func (b *batchConn) sendLoop() {
	for {
		b.qmu.Lock()
		for len(b.queue) == 0 && !b.qclosed {
			b.qmu.Unlock()
			<-b.wake
			b.qmu.Lock()
		}
		q, closed := b.queue, b.qclosed
		b.queue, b.spare = b.spare[:0], nil
		b.qmu.Unlock()
		var c *batchCall
		err := ErrClosed
		if !closed {
			c, err = b.current(b.done)
		}
		for i := range q {
			if err != nil {
				q[i].done(batchResult{err: err})
			} else {
				b.send(c, q[i].stream, q[i].expected, q[i].items, q[i].done)
			}
			q[i] = asyncAppend{}
		}
		b.qmu.Lock()
		b.spare = q[:0]
		if closed && len(b.queue) == 0 {
			b.sending = false
			b.qmu.Unlock()
			return
		}
		b.qmu.Unlock()
	}
}

// send sends one append on c; done gets its answer (or the call's error).
func (b *batchConn) send(c *batchCall, stream string, expected esdb.ExpectedRevision, items []*item, done func(batchResult)) {
	id := corrID{b.idBase, b.idSeq.Add(1)}
	req := newRequest(id.most, id.least, stream, expected, items)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		done(batchResult{err: err})
		return
	}
	c.pending[id] = done
	c.mu.Unlock()
	c.sendMu.Lock()
	err := c.stream.SendMsg(req)
	c.sendMu.Unlock()
	if err != nil {
		// Send's error is io.EOF when the call ended; its cause is Recv's.
		b.drop(c, err)
	}
}

// append appends items' events to stream with the expected revision and
// returns the stream's new revision, waiting for the answer. Errors are
// *batchError (the store's answer) or transport errors (transient).
func (b *batchConn) append(ctx context.Context, stream string, expected esdb.ExpectedRevision, items []*item) (uint64, error) {
	if err := b.checkSupported(ctx); err != nil {
		return 0, err
	}
	c, err := b.current(ctx)
	if err != nil {
		return 0, err
	}
	ch := resultChans.Get().(chan batchResult)
	b.send(c, stream, expected, items, func(r batchResult) { ch <- r })
	select {
	case r := <-ch:
		resultChans.Put(ch)
		return r.outcome(stream)
	case <-ctx.Done():
		// The answer, when it comes, goes to ch, which is not reused.
		return 0, ctx.Err()
	}
}

// outcome is the stream's new revision, or the append's error.
func (r batchResult) outcome(stream string) (uint64, error) {
	switch {
	case r.err != nil:
		return 0, r.err
	case r.slow != nil:
		return batchOutcome(stream, r.slow)
	}
	return r.rev, nil
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

// fromProtoUUID reads a UUID message, structured or as a string; false
// (and the zero UUID) when the string does not parse.
func fromProtoUUID(u *shared.UUID) (uuid.UUID, bool) {
	if s := u.GetStructured(); s != nil {
		return uuidFromBits(uint64(s.GetMostSignificantBits()), uint64(s.GetLeastSignificantBits())), true
	}
	id, err := uuid.Parse(u.GetString_())
	return id, err == nil
}
