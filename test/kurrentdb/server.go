package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// ServerVersion is the KurrentDB version the server models and reports:
// the newest 24.10 LTS patch (see doc.go).
const ServerVersion = "24.10.14"

// Server is a running KurrentDB-compatible server. All methods are safe for
// concurrent use.
type Server struct {
	streams.UnimplementedStreamsServer
	opts   Options
	lis    net.Listener
	grpc   *grpc.Server
	store  *store
	faults atomic.Pointer[Faults]
	users  *users // nil: no authentication (auth.go)

	subsMu  sync.Mutex
	subs    map[uint64]context.CancelFunc
	batches map[uint64]context.CancelFunc // open BatchAppend calls
	subSeq  uint64
	closing bool

	serveDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Start validates opts, replays the data directory if any, listens and
// serves in the background until Close.
func Start(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	st := newStore(opts.Logger)
	if opts.DataDir != "" {
		w, err := openWAL(opts.DataDir, st)
		if err != nil {
			return nil, err
		}
		st.wal = w
		go w.run()
	}
	lis, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		if st.wal != nil {
			_ = st.wal.close()
		}
		return nil, fmt.Errorf("kurrentdb: listening on %s: %w (choose another -addr, or port 0 for a free one)", opts.Addr, err)
	}
	s := &Server{
		opts:      opts,
		lis:       lis,
		store:     st,
		subs:      map[uint64]context.CancelFunc{},
		batches:   map[uint64]context.CancelFunc{},
		serveDone: make(chan struct{}),
	}
	f := opts.Faults
	s.faults.Store(&f)
	if len(opts.Users) > 0 {
		s.users = newUsers(opts.Users)
	}
	secure, err := s.secureOptions()
	if err != nil {
		_ = lis.Close()
		if st.wal != nil {
			_ = st.wal.close()
		}
		return nil, err
	}
	s.grpc = grpc.NewServer(append([]grpc.ServerOption{
		// The client pings every 10 s even without streams; grpc-go's default
		// policy (5 min) would answer GOAWAY too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.UnknownServiceHandler(s.unimplemented),
	}, secure...)...)
	streams.RegisterStreamsServer(s.grpc, s)
	serverfeatures.RegisterServerFeaturesServer(s.grpc, &features{srv: s})
	go func() {
		defer close(s.serveDone)
		_ = s.grpc.Serve(lis)
	}()
	opts.Logger.Info("kurrentdb: listening", "url", s.URL(), "data_dir", opts.DataDir)
	return s, nil
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// URL is the connection string for the official client, e.g.
// "esdb://127.0.0.1:2113?tls=false" (with Options.TLS: tls=true and the CA
// file as tlsCAFile; see tls.go).
func (s *Server) URL() string { return s.url() }

// Close stops serving (open subscriptions and BatchAppend calls end with
// Unavailable), writes and syncs every reserved append, and closes the log.
// It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.subsMu.Lock()
		s.closing = true
		s.subsMu.Unlock()
		s.cancelAll(s.subs)
		s.cancelAll(s.batches)
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			s.grpc.Stop()
		}
		<-s.serveDone
		s.store.close()
		if s.store.wal != nil {
			s.closeErr = s.store.wal.close()
		}
	})
	return s.closeErr
}

// register records cancel in calls (s.subs or s.batches) so that
// DropSubscriptions (subscriptions only) and Close can end the call; ok is
// false once Close has begun. A BatchAppend call is registered because,
// unlike other RPCs, a client keeps it open indefinitely.
func (s *Server) register(calls map[uint64]context.CancelFunc, cancel context.CancelFunc) (unregister func(), ok bool) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.closing {
		return nil, false
	}
	s.subSeq++
	id := s.subSeq
	calls[id] = cancel
	return func() {
		s.subsMu.Lock()
		delete(calls, id)
		s.subsMu.Unlock()
	}, true
}

// cancelAll ends every call registered in calls.
func (s *Server) cancelAll(calls map[uint64]context.CancelFunc) {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for _, cancel := range calls {
		cancel()
	}
	clear(calls)
}

func joinErrs(errs []error) error { return errors.Join(errs...) }
