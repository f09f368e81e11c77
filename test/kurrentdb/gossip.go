package kurrentdb

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// gossipService answers the client Gossip service (Gossip.Read.cs): the
// cluster's members as this node knows them. A single node, like a real
// one (GossipOnSingleNode is on by default), lists itself as the leader.
type gossipService struct {
	gossip.UnimplementedGossipServer
	srv *Server
}

func (g *gossipService) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	s := g.srv
	s.counts.gossipReads.Add(1)
	now := s.store.now().UnixNano() / 100 // ToTicksSinceEpoch: .NET ticks since the Unix epoch
	info := &gossip.ClusterInfo{}
	add := func(id [16]byte, addr string, state gossip.MemberInfo_VNodeState, alive bool) {
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.ParseUint(port, 10, 32)
		info.Members = append(info.Members, &gossip.MemberInfo{
			InstanceId: idToProto(id, true), TimeStamp: now, State: state, IsAlive: alive,
			HttpEndPoint: &gossip.EndPoint{Address: host, Port: uint32(p)},
		})
	}
	if s.cluster == nil {
		add(s.id, s.Addr(), gossip.MemberInfo_Leader, true)
		return info, nil
	}
	c := s.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		add(m.id, m.addr, m.state, m.srv != nil)
	}
	return info, nil
}

// requiresLeader reads the requires-leader header as the real server does
// (ServiceBase.GetRequiresLeader: bool.TryParse, absent or unparsable is
// false).
func requiresLeader(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get("requires-leader")
	return len(v) > 0 && strings.EqualFold(strings.TrimSpace(v[0]), "true")
}

// errNotReady is the real server's not-ready answer (RpcExceptions.ServerNotReady).
var errNotReady = status.Error(codes.Unavailable, "Server Is Not Ready")

// route decides whether this node serves a request (nil) or answers it
// with NotLeader (its trailers set through setTrailer) or not ready (see
// Cluster; ClusterVNodeController.cs). The NotLeader fault applies first,
// on any node.
func (s *Server) route(ctx context.Context, write bool, setTrailer func(metadata.MD)) error {
	if f := s.faults.Load(); f.NotLeader {
		addr := f.LeaderAddr
		if addr == "" {
			addr = s.Addr()
		}
		s.counts.notLeader.Add(1)
		return notLeaderError(addr, setTrailer)
	}
	if s.cluster == nil {
		return nil
	}
	state, leader := s.cluster.role(s.member)
	switch {
	case state == gossip.MemberInfo_Leader:
		return nil
	case leader == "":
		if write || requiresLeader(ctx) {
			s.counts.notReady.Add(1)
			return errNotReady
		}
		return nil
	case requiresLeader(ctx):
		s.counts.notLeader.Add(1)
		return notLeaderError(leader, setTrailer)
	}
	return nil // a follower reads, and forwards writes to the leader
}

// notLeaderError is RpcExceptions.LeaderInfo: NotFound "Leader info
// available" with the leader's host and port in the trailers.
func notLeaderError(addr string, setTrailer func(metadata.MD)) error {
	host, port, _ := net.SplitHostPort(addr)
	if _, err := strconv.Atoi(port); err != nil {
		port = "0"
	}
	setTrailer(metadata.Pairs("exception", "not-leader", "leader-endpoint-host", host, "leader-endpoint-port", port))
	return status.Error(codes.NotFound, "Leader info available")
}

// RequestCounts are what a server answered since it started, for tests.
type RequestCounts struct {
	Appends      int64 // Append calls that succeeded
	BatchAppends int64 // BatchAppend requests that succeeded
	NotLeader    int64 // requests answered NotLeader (it ends a BatchAppend call)
	NotReady     int64 // requests answered not ready for want of a leader
	GossipReads  int64 // Gossip.Read calls
}

type requestCounts struct{ appends, batchAppends, notLeader, notReady, gossipReads atomic.Int64 }

// Requests returns the server's RequestCounts.
func (s *Server) Requests() RequestCounts {
	return RequestCounts{
		Appends: s.counts.appends.Load(), BatchAppends: s.counts.batchAppends.Load(),
		NotLeader: s.counts.notLeader.Load(), NotReady: s.counts.notReady.Load(),
		GossipReads: s.counts.gossipReads.Load(),
	}
}
