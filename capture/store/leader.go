package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// BatchAppend on a cluster. Writes are the leader's: a follower forwards
// them, or, when the request says requires-leader: true, answers NotLeader
// naming the leader (KurrentDB's ClusterVNodeController). The BatchAppend
// connection goes to the leader and its calls carry requires-leader, so a
// request never takes the forwarding detour and a leader change shows as
// NotLeader, which ends the call (the server's BatchAppend throws it).
//
// The leader is found the way the official client (esdb/impl.go
// discoverNode, v4.2.0) discovers a node: each candidate in random order,
// the gossip seeds or the one DNS name of esdb+discover://, is asked
// Gossip.Read with the connection's gossip timeout; the first answer with
// an alive leader names it (the client's node preference does not apply:
// appends go to the leader whatever reads prefer). Unlike the official
// client, which tries the candidates MaxDiscoverAttempts times and then
// closes for good, a round that finds no leader (every seed down, or an
// election under way) fails the appends waiting for it as transient: the
// appender backs off and asks again, for as long as it runs.
//
// When a call ends, the appends waiting on it fail as transient and are sent
// again on a new call (same ids and expected revisions: what had landed is
// answered idempotently, or found by the tail read, so nothing is doubled):
// after NotLeader to the node its trailers name, after any other failure to
// the leader a new gossip round finds (the node may be dead).

// isCluster reports whether cfg names a cluster (gossip seeds, or DNS
// discovery) rather than one node.
func isCluster(cfg *esdb.Configuration) bool {
	return len(cfg.GossipSeeds) > 0 || cfg.DnsDiscover
}

// requireLeader marks an outgoing call as for the leader only.
func requireLeader(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "requires-leader", "true")
}

// leaderFinder finds a cluster's leader and connects b to it.
type leaderFinder struct {
	b        *batchConn
	seeds    []string // host:port
	dialOpts []grpc.DialOption
	timeout  time.Duration // per Gossip.Read
	log      *slog.Logger

	mu       sync.Mutex // one search at a time
	next     string     // the leader a NotLeader answer named: tried before gossip
	interval time.Duration
	failedAt time.Time // the last search that found no leader, and why
	failed   error
}

func newLeaderFinder(cfg *esdb.Configuration, dialOpts []grpc.DialOption, b *batchConn, log *slog.Logger) *leaderFinder {
	f := &leaderFinder{b: b, dialOpts: dialOpts, log: log,
		timeout: time.Duration(cfg.GossipTimeout) * time.Second, interval: time.Duration(cfg.DiscoveryInterval) * time.Millisecond}
	if f.timeout <= 0 {
		f.timeout = 5 * time.Second
	}
	for _, s := range cfg.GossipSeeds {
		f.seeds = append(f.seeds, s.String())
	}
	if len(f.seeds) == 0 {
		f.seeds = []string{cfg.Address}
	}
	return f
}

// node returns the connection appends go to: the single node's, or the
// cluster leader's, found first if there is none.
func (b *batchConn) node(ctx context.Context) (*grpc.ClientConn, error) {
	b.mu.Lock()
	conn, closed := b.conn, b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return nil, ErrClosed
	case conn != nil || b.leader == nil:
		return conn, nil
	}
	return b.leader.connect(ctx)
}

// connect connects b to the leader: the one a NotLeader named, else the
// one gossip names.
func (f *leaderFinder) connect(ctx context.Context) (*grpc.ClientConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.b
	b.mu.Lock()
	conn := b.conn
	b.mu.Unlock()
	if conn != nil { // found while this one waited
		return conn, nil
	}
	addr, how := f.next, "named by a NotLeader answer"
	if addr == "" {
		// The appends waiting here all need the leader: after a search
		// that found none, they fail at once until the discovery interval
		// (the official client's pause between rounds) has passed.
		if f.failed != nil && time.Since(f.failedAt) < f.interval {
			return nil, f.failed
		}
		var err error
		if addr, err = f.find(ctx); err != nil {
			if nl := (*noLeaderError)(nil); errors.As(err, &nl) {
				f.failed, f.failedAt = err, time.Now()
			}
			return nil, err
		}
		f.failed = nil
		how = "found by gossip"
	}
	f.next = ""
	conn, err := grpc.NewClient(addr, f.dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("store: connecting to the cluster's leader %s: %w", addr, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = conn.Close()
		return nil, ErrClosed
	}
	b.conn = conn
	b.mu.Unlock()
	b.supported.Store(0) // ask this node's features
	f.log.Info("appending through BatchAppend to the cluster's leader", "leader", addr, "how", how)
	return conn, nil
}

// followLeader is called when call c ended with err: on a cluster it drops
// c's node, so the next call goes to the leader NotLeader names, or to the
// one gossip finds.
func (b *batchConn) followLeader(c *batchCall, err error) {
	f := b.leader
	if f == nil {
		return
	}
	next := ""
	if tr := c.stream.Trailer(); status.Code(err) == codes.NotFound && first(tr, "exception") == "not-leader" {
		host, port := first(tr, "leader-endpoint-host"), first(tr, "leader-endpoint-port")
		if _, perr := strconv.Atoi(port); host != "" && perr == nil {
			next = net.JoinHostPort(host, port)
		}
	}
	b.mu.Lock()
	if b.conn != c.conn || b.closed {
		b.mu.Unlock()
		return // already moved on
	}
	b.conn = nil
	b.mu.Unlock()
	f.mu.Lock()
	f.next = next
	f.mu.Unlock()
	_ = c.conn.Close()
	if next != "" {
		f.log.Info("the store's leader moved; following NotLeader", "leader", next)
	} else {
		f.log.Warn("the BatchAppend call to the cluster ended; finding the leader again", "err", err)
	}
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// noLeaderError: no gossip seed named an alive leader.
type noLeaderError struct {
	Seeds []string
	Err   error // the last seed's problem
}

func (e *noLeaderError) Error() string {
	return fmt.Sprintf("no KurrentDB leader found through gossip seeds %s (every seed down, or an election under way; retrying): %v",
		strings.Join(e.Seeds, ","), e.Err)
}

func (e *noLeaderError) Unwrap() error { return e.Err }

var errNoLeader = errors.New("its gossip names no alive leader")

// find asks the seeds, in random order, for the leader.
func (f *leaderFinder) find(ctx context.Context) (string, error) {
	seeds := append([]string(nil), f.seeds...)
	rand.Shuffle(len(seeds), func(i, j int) { seeds[i], seeds[j] = seeds[j], seeds[i] })
	var last error
	for _, seed := range seeds {
		addr, err := f.ask(ctx, seed)
		if err == nil {
			return addr, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		last = fmt.Errorf("%s: %w", seed, err)
	}
	return "", &noLeaderError{Seeds: f.seeds, Err: last}
}

// ask reads seed's gossip and returns the alive leader's address.
func (f *leaderFinder) ask(ctx context.Context, seed string) (string, error) {
	conn, err := grpc.NewClient(seed, f.dialOpts...)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(f.b.ctx(ctx), f.timeout)
	defer cancel()
	info, err := gossip.NewGossipClient(conn).Read(cctx, &shared.Empty{})
	if err != nil {
		return "", err
	}
	return leaderOf(info)
}

// leaderOf is the address of the alive leader in a gossip answer.
func leaderOf(info *gossip.ClusterInfo) (string, error) {
	for _, m := range info.GetMembers() {
		if m.GetIsAlive() && m.GetState() == gossip.MemberInfo_Leader {
			ep := m.GetHttpEndPoint()
			return net.JoinHostPort(ep.GetAddress(), strconv.FormatUint(uint64(ep.GetPort()), 10)), nil
		}
	}
	return "", errNoLeader
}
