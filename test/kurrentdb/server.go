package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
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
	opts      Options
	lis       net.Listener
	grpc      *grpc.Server
	store     *store
	ownsStore bool     // a single node; a cluster's nodes share the cluster's
	cluster   *Cluster // nil for a single node
	member    int      // this node's index in cluster
	faults    atomic.Pointer[Faults]
	counts    requestCounts
	id        [16]byte // a single node's gossip instance id
	users     *users   // nil: no authentication (auth.go)

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
	st, err := openStore(opts)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		st.shutdown()
		return nil, fmt.Errorf("kurrentdb: listening on %s: %w (choose another -addr, or port 0 for a free one)", opts.Addr, err)
	}
	s := serve(opts, st, lis, nil, 0)
	s.ownsStore = true
	return s, nil
}

// openStore opens the store opts describe: the data directory's log,
// replayed, or an empty log in memory.
func openStore(opts Options) (*store, error) {
	st := newStore(opts.Logger, opts.CacheSize)
	if opts.DataDir != "" {
		w, err := openWAL(opts.DataDir, st)
		if err != nil {
			st.release()
			return nil, err
		}
		st.wal = w
		go w.run()
	} else if err := st.inMemory(); err != nil {
		st.release()
		return nil, err
	}
	return st, nil
}

// shutdown closes the store: every reserved append is written and synced,
// the log closed and the index freed.
func (st *store) shutdown() error {
	st.close()
	var err error
	if st.wal != nil {
		err = st.wal.close()
	}
	st.release()
	return err
}

// serve starts a server (a node of cl, or a single node when cl is nil) on
// st and lis.
func serve(opts Options, st *store, lis net.Listener, cl *Cluster, member int) *Server {
	s := &Server{
		opts:      opts,
		lis:       lis,
		store:     st,
		cluster:   cl,
		member:    member,
		subs:      map[uint64]context.CancelFunc{},
		batches:   map[uint64]context.CancelFunc{},
		serveDone: make(chan struct{}),
		id:        newID(),
	}
	f := opts.Faults
	s.faults.Store(&f)
	if len(opts.Users) > 0 {
		s.users = newUsers(opts.Users)
	}
	secure, err := s.secureOptions()
	if err != nil {
		// validate loaded the same files: they changed since.
		panic("kurrentdb: " + err.Error())
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
	gossip.RegisterGossipServer(s.grpc, &gossipService{srv: s})
	go func() {
		defer close(s.serveDone)
		_ = s.grpc.Serve(lis)
	}()
	opts.Logger.Info("kurrentdb: listening", "url", s.URL(), "data_dir", opts.DataDir)
	return s
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// URL is the connection string for the official client, e.g.
// "esdb://127.0.0.1:2113?tls=false" (with Options.TLS: tls=true and the CA
// file as tlsCAFile; see tls.go).
func (s *Server) URL() string { return s.url() }

// Close stops serving (open subscriptions and BatchAppend calls end with
// Unavailable), writes and syncs every reserved append, and closes the log
// (a cluster's node leaves the log to Cluster.Close). It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stop(true)
		if s.ownsStore {
			s.closeErr = s.store.shutdown()
		}
	})
	return s.closeErr
}

// stop ends every call and stops serving: gracefully (in-flight unary calls
// finish, 5 s at most), or at once, as a killed process would (connections
// dropped, nothing more answered).
func (s *Server) stop(graceful bool) {
	s.subsMu.Lock()
	s.closing = true
	s.subsMu.Unlock()
	s.cancelAll(s.subs)
	s.cancelAll(s.batches)
	if !graceful {
		s.grpc.Stop()
		<-s.serveDone
		return
	}
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		s.grpc.Stop()
	}
	<-s.serveDone
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

// Footprint reports the records, streams and memory the server holds.
func (s *Server) Footprint() Footprint { return s.store.footprint() }
