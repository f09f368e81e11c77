package kurrentdb

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
)

// ClusterOptions configure a Cluster.
type ClusterOptions struct {
	// Nodes is the number of nodes. Default 3 (the usual production
	// cluster).
	Nodes int
	// Options are every node's settings. DataDir is the cluster's one log
	// (see Cluster); Addr's host is where the nodes listen, each on a free
	// port (default 127.0.0.1); Faults start on every node (change them
	// per node with Node(i).SetFaults).
	Options Options
	// ElectionDelay is how long the cluster has no leader after its leader
	// is killed: the surviving nodes answer Gossip.Read with state Unknown
	// and refuse writes as not ready until the delay passes and the lowest
	// surviving node becomes leader. Default 0: at once. (A real cluster
	// takes seconds: the gossip timeout, 2.5 s by default, then an
	// election.)
	ElectionDelay time.Duration
}

// Cluster is a cluster of KurrentDB-compatible nodes in one process, for
// tests of clients that discover the leader by gossip and follow it. Each
// node is a Server with its own address; all of them serve one store (one
// log). What it models, as KurrentDB 24.10.14 does it (ClusterVNodeController.cs,
// GossipServiceBase.cs, Gossip.Read.cs):
//
//   - Gossip.Read on every node lists every member: instance id, time,
//     state (Leader, Follower; Unknown while there is no leader), whether
//     it is alive, and its address as http_end_point (clients connect
//     there for gRPC). A killed node stays listed, not alive.
//   - The leader serves everything. A follower serves reads and forwards
//     writes to the leader (here: performs them on the shared store),
//     unless the request carries the header requires-leader: true; then it
//     answers NotLeader naming the leader (trailers exception=not-leader,
//     leader-endpoint-host, leader-endpoint-port; on BatchAppend the whole
//     call ends with it). Without a leader (during an election) writes are
//     answered not ready (Unavailable "Server Is Not Ready"; a BatchAppend
//     request gets that error answer), and reads that require the leader
//     too; other reads are served.
//   - Kill(i) stops node i at once, as a killed process would: its
//     connections drop, in-flight calls get no answer. A write it had
//     already reserved in the log completes (it was replicated: nothing a
//     node acknowledged is ever lost). If it was the leader, the cluster
//     elects the lowest surviving node after ElectionDelay. Restart(i)
//     brings it back on the same address as a follower; MoveLeader(i)
//     makes node i leader at once (the old leader resigns and follows).
//
// What it does not model: followers that lag behind the leader (every node
// reads the same log, so a read on a follower sees every durable write),
// writes a dead leader had not replicated being truncated when it rejoins,
// quorum loss (one surviving node still elects itself), read-only
// replicas, node priorities, and the time a real election takes beyond
// ElectionDelay. Close stops every node and closes the log.
type Cluster struct {
	opts  ClusterOptions
	store *store

	mu       sync.Mutex
	members  []*member
	leader   int // -1: none (electing)
	electing *time.Timer
	closed   bool
}

type member struct {
	id    [16]byte
	addr  string
	srv   *Server // nil while killed
	state gossip.MemberInfo_VNodeState
}

// StartCluster starts opts.Nodes nodes on one store; node 0 is the leader.
func StartCluster(opts ClusterOptions) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	o := opts.Options.withDefaults()
	var errs []error
	if opts.Nodes < 1 {
		errs = append(errs, &ConfigError{Field: "Nodes", Reason: "must be at least 1, or 0 for 3"})
	}
	if opts.ElectionDelay < 0 {
		errs = append(errs, &ConfigError{Field: "ElectionDelay", Reason: "must be >= 0"})
	}
	if err := o.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(o.Addr)
	st, err := openStore(o)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, store: st}
	c.opts.Options = o
	var liss []net.Listener
	for i := range opts.Nodes {
		lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			for _, l := range liss {
				_ = l.Close()
			}
			_ = st.shutdown()
			return nil, fmt.Errorf("kurrentdb: listening for cluster node %d on %s: %w", i, host, err)
		}
		liss = append(liss, lis)
		m := &member{id: newID(), addr: lis.Addr().String(), state: gossip.MemberInfo_Follower}
		if i == 0 {
			m.state = gossip.MemberInfo_Leader
		}
		c.members = append(c.members, m)
	}
	c.mu.Lock()
	for i, m := range c.members {
		m.srv = serve(o, st, liss[i], c, i)
	}
	c.mu.Unlock()
	o.Logger.Info("kurrentdb: cluster started", "url", c.URL(), "leader", c.members[0].addr)
	return c, nil
}

// URL is a connection string naming every node as a gossip seed, e.g.
// "esdb://127.0.0.1:2113,127.0.0.1:2114,127.0.0.1:2115?tls=false".
func (c *Cluster) URL() string {
	addrs := make([]string, len(c.members))
	for i, m := range c.members {
		addrs[i] = m.addr
	}
	return "esdb://" + strings.Join(addrs, ",") + "?tls=false"
}

// Addr is node i's host:port (also while it is killed).
func (c *Cluster) Addr(i int) string { return c.members[i].addr }

// Node is node i's Server, nil while it is killed.
func (c *Cluster) Node(i int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].srv
}

// Leader is the leader's index, -1 while there is none.
func (c *Cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// Kill stops node i at once (see Cluster). Killing a killed node does
// nothing.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	if err := c.checkLocked(i); err != nil {
		c.mu.Unlock()
		return err
	}
	m := c.members[i]
	srv := m.srv
	if srv == nil {
		c.mu.Unlock()
		return nil
	}
	m.srv = nil
	if c.leader == i {
		c.leader = -1
		for _, o := range c.members {
			if o.srv != nil {
				o.state = gossip.MemberInfo_Unknown
			}
		}
		c.electLocked()
	}
	c.mu.Unlock()
	srv.closeOnce.Do(func() { srv.stop(false) })
	c.store.logger.Info("kurrentdb: cluster node killed", "node", i, "addr", m.addr)
	return nil
}

// electLocked makes the lowest surviving node leader, after ElectionDelay.
func (c *Cluster) electLocked() {
	if c.electing != nil {
		c.electing.Stop()
		c.electing = nil
	}
	if c.opts.ElectionDelay == 0 {
		c.electNowLocked()
		return
	}
	var t *time.Timer
	t = time.AfterFunc(c.opts.ElectionDelay, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.electing == t {
			c.electing = nil
			c.electNowLocked()
		}
	})
	c.electing = t
}

func (c *Cluster) electNowLocked() {
	if c.closed || c.leader >= 0 {
		return
	}
	for i, m := range c.members {
		if m.srv != nil {
			c.setLeaderLocked(i)
			c.store.logger.Info("kurrentdb: cluster elected a leader", "node", i, "addr", m.addr)
			return
		}
	}
}

func (c *Cluster) setLeaderLocked(i int) {
	c.leader = i
	for j, m := range c.members {
		switch {
		case j == i:
			m.state = gossip.MemberInfo_Leader
		case m.srv != nil:
			m.state = gossip.MemberInfo_Follower
		}
	}
}

// MoveLeader makes live node i the leader at once; the old one follows.
func (c *Cluster) MoveLeader(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkLocked(i); err != nil {
		return err
	}
	if c.members[i].srv == nil {
		return fmt.Errorf("kurrentdb: cluster node %d is killed: Restart it first", i)
	}
	if c.electing != nil {
		c.electing.Stop()
		c.electing = nil
	}
	c.setLeaderLocked(i)
	return nil
}

// Restart brings killed node i back on its address, as a follower (as the
// leader if no node is alive). Restarting a live node does nothing.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkLocked(i); err != nil {
		return err
	}
	m := c.members[i]
	if m.srv != nil {
		return nil
	}
	lis, err := net.Listen("tcp", m.addr)
	if err != nil {
		return fmt.Errorf("kurrentdb: restarting cluster node %d on %s: %w", i, m.addr, err)
	}
	m.id = newID()
	m.srv = serve(c.opts.Options, c.store, lis, c, i)
	m.state = gossip.MemberInfo_Unknown
	switch {
	case c.leader >= 0:
		m.state = gossip.MemberInfo_Follower
	case c.electing == nil:
		c.electLocked()
	}
	return nil
}

func (c *Cluster) checkLocked(i int) error {
	if c.closed {
		return ErrClosed
	}
	if i < 0 || i >= len(c.members) {
		return fmt.Errorf("kurrentdb: no cluster node %d (the cluster has %d)", i, len(c.members))
	}
	return nil
}

// role is how node i stands: its state, and the leader's address ("" while
// there is none).
func (c *Cluster) role(i int) (gossip.MemberInfo_VNodeState, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	leader := ""
	if c.leader >= 0 {
		leader = c.members[c.leader].addr
	}
	return c.members[i].state, leader
}

// Close stops every node, then writes and syncs every reserved append and
// closes the log. It is idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.electing != nil {
		c.electing.Stop()
	}
	var nodes []*Server
	for _, m := range c.members {
		if m.srv != nil {
			nodes = append(nodes, m.srv)
		}
	}
	c.mu.Unlock()
	for _, s := range nodes {
		_ = s.Close()
	}
	return c.store.shutdown()
}
