package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// BatchWriteTimeout is KurrentDB's default write timeout (WriteTimeoutMs,
// 2,000 ms). A batch append must be complete (is_final received) within the
// smaller of it and the request's deadline, or it is answered Timeout.
const BatchWriteTimeout = 2 * time.Second

// BatchAppend implements the bidirectional batch append. See doc.go
// ("BatchAppend") for the protocol and where it follows the real server.
//
// Goroutines: this handler receives and validates requests; each complete
// request (is_final) gets a goroutine that applies the injected latency and
// faults, waits until the previous write of this call to the same stream
// has reserved its place in the log, reserves its own (the store's append
// rules), waits until it is durable and sends the answer. Sends are
// serialised by a mutex. Incomplete requests have a timer (their deadline).
// The handler returns only after every goroutine and timer it started has
// finished, so nothing sends on a finished stream; the one exception is the
// goroutine blocked in Recv, which ends when gRPC cancels the stream right
// after the handler returns (see receive).
func (s *Server) BatchAppend(stream streams.Streams_BatchAppendServer) error {
	if s.opts.NoBatchAppend {
		return status.Error(codes.Unimplemented, "method BatchAppend not implemented")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	unregister, ok := s.register(s.batches, cancel)
	if !ok {
		return status.Error(codes.Unavailable, "Server Is Not Ready: shutting down")
	}
	defer unregister()
	c := &batchCall{
		s: s, stream: stream, ctx: ctx, cancel: cancel,
		pending: map[[16]byte]*batchWrite{},
		last:    map[string]chan struct{}{},
	}
	err := c.receive()
	if err != nil {
		cancel() // a broken call: abandon writes not yet reserved
	}
	c.finish()
	if err != nil {
		return err
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.sendErr
}

// batchCall is the state of one BatchAppend call.
type batchCall struct {
	s      *Server
	stream streams.Streams_BatchAppendServer
	ctx    context.Context
	cancel context.CancelFunc

	sendMu  sync.Mutex
	sendErr error // the first failed Send; later answers are dropped

	mu      sync.Mutex
	done    bool                     // finish has begun: timers must not answer
	pending map[[16]byte]*batchWrite // incomplete requests by correlation id
	// last holds, per stream, a channel closed once the latest dispatched
	// write of this call to that stream has reserved its revisions (or given
	// up); the next write to the stream waits for it.
	last map[string]chan struct{}

	wg sync.WaitGroup // dispatched writes and firing timers
}

// batchWrite is one correlation id's append being assembled.
type batchWrite struct {
	corr *shared.UUID // as sent, echoed in the answer
	id   [16]byte
	name string
	exp  Expected
	// The fields below are touched only by the receiving goroutine.
	events []proposed
	size   int
	timer  *time.Timer
}

// receive handles requests until the client closes its side (nil), the
// call breaks, or Close ends it (the error to end the call with).
//
// Recv runs in its own goroutine because only the end of the handler
// unblocks it: Close cancels ctx, receive returns, the handler returns,
// gRPC cancels the stream and that goroutine's Recv fails. It hands over
// one request at a time, so io.EOF arrives after every request before it.
func (c *batchCall) receive() error {
	reqs := make(chan *streams.BatchAppendReq)
	ended := make(chan error, 1)
	go func() {
		for {
			req, err := c.stream.Recv()
			if err != nil {
				ended <- err
				return
			}
			select {
			case reqs <- req:
			case <-c.ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case req := <-reqs:
			if err := c.handle(req); err != nil {
				return err
			}
		case err := <-ended:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-c.ctx.Done():
			if c.stream.Context().Err() != nil {
				return status.FromContextError(c.stream.Context().Err()).Err()
			}
			// Cancelled by Close (or by a failed Send).
			c.sendMu.Lock()
			sendErr := c.sendErr
			c.sendMu.Unlock()
			if sendErr != nil {
				return sendErr
			}
			return status.Error(codes.Unavailable, "Server Is Not Ready: shutting down")
		}
	}
}

// finish answers incomplete requests Timeout (the client can no longer
// complete them), then waits for every write and timer.
func (c *batchCall) finish() {
	c.mu.Lock()
	c.done = true
	var open []*batchWrite
	for id, w := range c.pending {
		if w.timer != nil {
			w.timer.Stop()
		}
		delete(c.pending, id)
		open = append(open, w)
	}
	c.mu.Unlock()
	for _, w := range open {
		c.send(batchError(w.corr, streamID(w.name), timeoutStatus()))
	}
	c.wg.Wait()
}

// handle processes one request. It returns an error only for what ends the
// whole call (not-leader); everything else is answered per correlation id.
func (c *batchCall) handle(req *streams.BatchAppendReq) error {
	corr, opts := req.GetCorrelationId(), req.GetOptions()
	id, ok := idFromProto(corr)
	if !ok {
		c.send(batchError(corr, opts.GetStreamIdentifier(), badRequestStatus("the correlation id is missing or not a UUID: give every request a correlation_id")))
		return nil
	}
	if opts != nil {
		if a := c.open(req, id, opts); a != nil {
			c.send(a)
			return nil
		}
	}
	c.mu.Lock()
	w := c.pending[id]
	c.mu.Unlock()
	if w == nil {
		// No options ever came for this correlation id (or it was already
		// answered): the real server ignores the request silently.
		return nil
	}
	// Sizes as the real server's AddEvents counts them: each event against
	// the event limit as it comes, the request's running total against the
	// append limit once the request's events are in.
	for i, pm := range req.GetProposedMessages() {
		ev, err := proposedFromBatch(pm)
		if err != nil {
			if c.take(w) {
				c.send(batchError(corr, streamID(w.name), badRequestStatus(fmt.Sprintf("stream %q, proposed message %d: %v", w.name, i, err))))
			}
			return nil
		}
		n := eventSize(ev.Type, ev.Data, ev.Metadata)
		if n > c.s.opts.MaxAppendEventSize {
			if c.take(w) {
				c.send(batchError(corr, streamID(w.name), maxAppendEventSizeStatus(formatUUID(ev.ID), n, c.s.opts.MaxAppendEventSize)))
			}
			return nil
		}
		w.size += n
		if w.size <= c.s.opts.MaxAppendSize {
			w.events = append(w.events, ev)
		}
	}
	if w.size > c.s.opts.MaxAppendSize {
		if c.take(w) {
			c.send(batchError(corr, streamID(w.name), maxAppendSizeStatus(c.s.opts.MaxAppendSize)))
		}
		return nil
	}
	if !req.GetIsFinal() || !c.take(w) {
		return nil
	}
	if err := c.s.route(c.stream.Context(), true, c.setTrailer); err != nil {
		if status.Code(err) == codes.Unavailable {
			c.send(batchError(corr, streamID(w.name), notReadyStatus()))
			return nil
		}
		return err // NotLeader ends the call (the real server's callback throws)
	}
	if w.name == "" {
		c.send(batchError(corr, streamID(w.name), badRequestStatus("the options name an empty stream: set stream_identifier.stream_name")))
		return nil
	}
	c.dispatch(w)
	return nil
}

// open handles the options of a request: the checks the real server makes
// on every options message, then a new pending write unless one is pending
// for this correlation id already (later options are ignored). It returns
// the answer when the request is rejected.
func (c *batchCall) open(req *streams.BatchAppendReq, id [16]byte, opts *streams.BatchAppendReq_Options) *streams.BatchAppendResp {
	corr := req.GetCorrelationId()
	if opts.GetStreamIdentifier() == nil {
		return batchError(corr, nil, badRequestStatus("Required field StreamIdentifier not set."))
	}
	timeout := min(requestedTimeout(opts), BatchWriteTimeout)
	if timeout <= 0 {
		return batchError(corr, opts.GetStreamIdentifier(), timeoutStatus())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[id] != nil {
		return nil
	}
	exp, ok := expectedFromBatch(opts)
	if !ok {
		return batchError(corr, opts.GetStreamIdentifier(), badRequestStatus("the options set no expected_stream_position: set stream_position, no_stream, any or stream_exists"))
	}
	w := &batchWrite{corr: corr, id: id, name: string(opts.GetStreamIdentifier().GetStreamName()), exp: exp}
	if !req.GetIsFinal() {
		w.timer = time.AfterFunc(timeout, func() { c.expire(w) })
	}
	c.pending[id] = w
	return nil
}

// take removes w from the pending writes; false if it is no longer there
// (its deadline passed and it was answered Timeout).
func (c *batchCall) take(w *batchWrite) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[w.id] != w {
		return false
	}
	delete(c.pending, w.id)
	if w.timer != nil {
		w.timer.Stop()
	}
	return true
}

// expire runs on w's timer: still incomplete, it is answered Timeout.
func (c *batchCall) expire(w *batchWrite) {
	c.mu.Lock()
	if c.done || c.pending[w.id] != w {
		c.mu.Unlock()
		return
	}
	delete(c.pending, w.id)
	c.wg.Add(1) // under mu, before finish's Wait can start
	c.mu.Unlock()
	defer c.wg.Done()
	c.send(batchError(w.corr, streamID(w.name), timeoutStatus()))
}

// dispatch starts the write of a complete request in its own goroutine,
// ordered after the previous write of this call to the same stream.
func (c *batchCall) dispatch(w *batchWrite) {
	c.mu.Lock()
	prev := c.last[w.name]
	mine := make(chan struct{})
	c.last[w.name] = mine
	c.wg.Add(1)
	c.mu.Unlock()
	// The faults in force when the request is complete apply to it, as
	// they apply to an Append RPC that starts then.
	f := c.s.faults.Load()
	go func() {
		defer c.wg.Done()
		if a := c.write(w, f, prev, mine); a != nil {
			c.send(a)
		}
	}()
}

// write applies the faults and appends w; it returns the answer (nil: none,
// the call is ending). mine is closed once w's place in the log is reserved
// or w is given up, whichever comes first.
func (c *batchCall) write(w *batchWrite, f *Faults, prev, mine chan struct{}) *streams.BatchAppendResp {
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		close(mine)
		c.mu.Lock()
		if c.last[w.name] == mine {
			delete(c.last, w.name)
		}
		c.mu.Unlock()
	}
	defer release()

	// Latency first, concurrently with the other writes of the call.
	injected, after := applyFaults(c.ctx, f)
	if prev != nil {
		select {
		case <-prev:
		case <-c.ctx.Done():
			return nil
		}
	}
	if injected != nil && !after {
		return c.injectedAnswer(w, injected)
	}
	res, pos, err := c.s.store.reserveAppend(w.name, w.exp, w.events)
	release()
	if err == nil {
		err = c.s.store.waitVisible(c.ctx, pos)
	}
	if err != nil {
		return c.errorAnswer(w, err)
	}
	if injected != nil {
		return c.injectedAnswer(w, injected)
	}
	c.s.counts.batchAppends.Add(1)
	return batchSuccess(w.corr, w.name, res)
}

// injectedAnswer reports an injected fault the way the real server reports
// the write failure it models: Unavailable as not-ready, Aborted (a commit
// timeout on Append) as Timeout.
func (c *batchCall) injectedAnswer(w *batchWrite, injected error) *streams.BatchAppendResp {
	switch status.Code(injected) {
	case codes.Unavailable:
		return batchError(w.corr, streamID(w.name), notReadyStatus())
	case codes.Aborted:
		return batchError(w.corr, streamID(w.name), timeoutStatus())
	}
	return nil // the call's context ended during the latency
}

// errorAnswer maps a store error to the answer the real server gives.
func (c *batchCall) errorAnswer(w *batchWrite, err error) *streams.BatchAppendResp {
	var (
		wev     *WrongExpectedVersionError
		deleted *StreamDeletedError
		stErr   *StorageError
	)
	switch {
	case errors.As(err, &wev):
		return batchError(w.corr, streamID(w.name), wevStatus(wev))
	case errors.As(err, &deleted):
		return batchError(w.corr, streamID(w.name), streamDeletedStatus(w.name))
	case errors.Is(err, ErrClosed), errors.As(err, &stErr):
		return batchError(w.corr, streamID(w.name), notReadyStatus())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	}
	c.s.opts.Logger.Error("kurrentdb: batch append failed", "stream", w.name, "err", err)
	return batchError(w.corr, streamID(w.name), unknownStatus())
}

// send writes one answer; after a failed Send it drops answers and cancels
// the call.
func (c *batchCall) send(a *streams.BatchAppendResp) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendErr != nil {
		return
	}
	if err := c.stream.Send(a); err != nil {
		c.sendErr = err
		c.cancel()
	}
}

// setTrailer sets the call's trailer, serialised with the sends.
func (c *batchCall) setTrailer(md metadata.MD) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.stream.SetTrailer(md)
}

// requestedTimeout is the deadline of a batch append's options: the
// duration, or the time until the timestamp, or (neither) no limit.
func requestedTimeout(o *streams.BatchAppendReq_Options) time.Duration {
	switch d := o.GetDeadlineOption().(type) {
	case *streams.BatchAppendReq_Options_Deadline:
		return d.Deadline.AsDuration()
	case *streams.BatchAppendReq_Options_Deadline_21_10_0:
		return time.Until(d.Deadline_21_10_0.AsTime())
	}
	return BatchWriteTimeout
}

func expectedFromBatch(o *streams.BatchAppendReq_Options) (Expected, bool) {
	switch v := o.GetExpectedStreamPosition().(type) {
	case *streams.BatchAppendReq_Options_StreamPosition:
		return Expected{Kind: ExpectRevision, Revision: v.StreamPosition}, true
	case *streams.BatchAppendReq_Options_NoStream:
		return Expected{Kind: ExpectNoStream}, true
	case *streams.BatchAppendReq_Options_Any:
		return Expected{Kind: ExpectAny}, true
	case *streams.BatchAppendReq_Options_StreamExists:
		return Expected{Kind: ExpectStreamExists}, true
	}
	return Expected{}, false
}

// proposedFromBatch converts one proposed message; the real server answers
// BadRequest for the same faults (an id that is not a UUID or is all zero,
// a missing type or content-type).
func proposedFromBatch(pm *streams.BatchAppendReq_ProposedMessage) (proposed, error) {
	id, ok := idFromProto(pm.GetId())
	if !ok {
		return proposed{}, errors.New("the event id is missing or not a UUID")
	}
	if id == ([16]byte{}) {
		return proposed{}, errors.New("the event id is the empty UUID")
	}
	typ, okT := pm.GetMetadata()["type"]
	ct, okC := pm.GetMetadata()["content-type"]
	if !okT || !okC {
		return proposed{}, errors.New("metadata must carry both \"type\" and \"content-type\"")
	}
	return proposed{ID: id, Type: typ, ContentType: ct, Metadata: pm.GetCustomMetadata(), Data: pm.GetData()}, nil
}
