package kurrentdb_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

// dial is a raw gRPC connection to addr, closed when the test ends.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func readGossip(t *testing.T, addr string) []*gossip.MemberInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := gossip.NewGossipClient(dial(t, addr)).Read(ctx, &shared.Empty{})
	if err != nil {
		t.Fatalf("Gossip.Read on %s: %v", addr, err)
	}
	return info.GetMembers()
}

func endpoint(m *gossip.MemberInfo) string {
	return net.JoinHostPort(m.GetHttpEndPoint().GetAddress(), strconv.Itoa(int(m.GetHttpEndPoint().GetPort())))
}

// states maps each member's address to its state and liveness.
func states(members []*gossip.MemberInfo) map[string]string {
	out := map[string]string{}
	for _, m := range members {
		s := m.GetState().String()
		if !m.GetIsAlive() {
			s += " (dead)"
		}
		out[endpoint(m)] = s
	}
	return out
}

// TestGossipSingleNode: a single node answers Gossip.Read with itself,
// alive, as the leader, at its own address, with an instance id and the
// current time in .NET ticks since the Unix epoch.
func TestGossipSingleNode(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	members := readGossip(t, srv.Addr())
	if len(members) != 1 {
		t.Fatalf("%d members, want 1", len(members))
	}
	m := members[0]
	if m.GetState() != gossip.MemberInfo_Leader || !m.GetIsAlive() || endpoint(m) != srv.Addr() {
		t.Fatalf("member = %v, want the leader, alive, at %s", m, srv.Addr())
	}
	if m.GetInstanceId().GetStructured() == nil {
		t.Fatalf("instance id %v, want a structured UUID", m.GetInstanceId())
	}
	if now := time.Now().UnixNano() / 100; m.GetTimeStamp() < now-600_000_000 || m.GetTimeStamp() > now+600_000_000 {
		t.Fatalf("time stamp %d ticks, want about %d", m.GetTimeStamp(), now)
	}
}

// TestClusterGossipAndElection: every node of a 3-node cluster lists the
// three members, node 0 the alive leader and the others alive followers;
// after the leader is killed the survivors list it as dead and, until the
// election delay passes, have no leader (state Unknown) and refuse writes
// as not ready; then the lowest survivor is the leader. A restarted node
// rejoins as a follower.
func TestClusterGossipAndElection(t *testing.T) {
	cl := kurrentdbtest.StartCluster(t, kurrentdb.ClusterOptions{ElectionDelay: 500 * time.Millisecond})
	want := map[string]string{cl.Addr(0): "Leader", cl.Addr(1): "Follower", cl.Addr(2): "Follower"}
	for i := range 3 {
		members := readGossip(t, cl.Addr(i))
		if got := states(members); !equalMaps(got, want) {
			t.Fatalf("gossip from node %d: %v, want %v", i, got, want)
		}
		ids := map[string]bool{}
		for _, m := range members {
			ids[m.GetInstanceId().String()] = true
		}
		if len(ids) != 3 {
			t.Fatalf("gossip from node %d: %d distinct instance ids, want 3", i, len(ids))
		}
	}
	if err := cl.Kill(0); err != nil {
		t.Fatal(err)
	}
	during := states(readGossip(t, cl.Addr(1)))
	if during[cl.Addr(0)] != "Leader (dead)" || during[cl.Addr(1)] != "Unknown" || during[cl.Addr(2)] != "Unknown" {
		t.Fatalf("gossip during the election: %v, want the old leader dead and the others Unknown", during)
	}
	db := kurrentdbtest.Client(t, "esdb://"+cl.Addr(1)+"?tls=false")
	_, err := db.AppendToStream(context.Background(), "election", esdb.AppendToStreamOptions{}, esdbEvent())
	if code(err) != esdb.ErrorUnavailable {
		t.Fatalf("append during the election: %v, want Unavailable (not ready)", err)
	}
	waitFor(t, 10*time.Second, "node 1 elected", func() bool { return cl.Leader() == 1 })
	after := states(readGossip(t, cl.Addr(2)))
	if after[cl.Addr(1)] != "Leader" || after[cl.Addr(2)] != "Follower" {
		t.Fatalf("gossip after the election: %v, want node 1 leader, node 2 follower", after)
	}
	if err := cl.Restart(0); err != nil {
		t.Fatal(err)
	}
	if got := states(readGossip(t, cl.Addr(0)))[cl.Addr(0)]; got != "Follower" {
		t.Fatalf("restarted node 0 is %q, want Follower", got)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requireLeader is the header clients send to be answered by the leader only.
func requireLeader(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "requires-leader", "true")
}

// notLeaderTrailer checks a NotLeader answer naming leader.
func notLeaderTrailer(t *testing.T, what string, err error, tr metadata.MD, leader string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(leader)
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "Leader info available" {
		t.Fatalf("%s: %v, want NotFound \"Leader info available\"", what, err)
	}
	if g := tr.Get("exception"); len(g) != 1 || g[0] != "not-leader" {
		t.Fatalf("%s: exception trailer %v, want not-leader", what, g)
	}
	if h, p := tr.Get("leader-endpoint-host"), tr.Get("leader-endpoint-port"); len(h) != 1 || h[0] != host || len(p) != 1 || p[0] != port {
		t.Fatalf("%s: leader trailers %v:%v, want %s:%s", what, h, p, host, port)
	}
}

// TestFollowerAnswers: a follower answers a request carrying
// requires-leader: true with NotLeader naming the leader (Append, Read, and
// BatchAppend, whose whole call ends); without the header it serves reads
// and forwards writes, which the leader then serves.
func TestFollowerAnswers(t *testing.T) {
	cl := kurrentdbtest.StartCluster(t, kurrentdb.ClusterOptions{})
	leader, follower := cl.Addr(0), cl.Addr(1)
	conn := dial(t, follower)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Append with the header.
	var tr metadata.MD
	app, err := streams.NewStreamsClient(conn).Append(requireLeader(ctx), grpc.Trailer(&tr))
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	for _, req := range []*streams.AppendReq{
		{Content: &streams.AppendReq_Options_{Options: &streams.AppendReq_Options{
			StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("follower")},
			ExpectedStreamRevision: &streams.AppendReq_Options_Any{Any: &shared.Empty{}},
		}}},
		{Content: &streams.AppendReq_ProposedMessage_{ProposedMessage: &streams.AppendReq_ProposedMessage{
			Id:       &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
			Metadata: map[string]string{"type": "T", "content-type": "application/json"},
			Data:     []byte(`{}`),
		}}},
	} {
		if err := app.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	_, err = app.CloseAndRecv()
	notLeaderTrailer(t, "Append on a follower with requires-leader", err, tr, leader)

	// Read with the header.
	rd, err := streams.NewStreamsClient(conn).Read(requireLeader(ctx), &streams.ReadReq{Options: &streams.ReadReq_Options{
		StreamOption:  &streams.ReadReq_Options_Stream{Stream: &streams.ReadReq_Options_StreamOptions{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("follower")}, RevisionOption: &streams.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}}}},
		CountOption:   &streams.ReadReq_Options_Count{Count: 10},
		FilterOption:  &streams.ReadReq_Options_NoFilter{NoFilter: &shared.Empty{}},
		UuidOption:    &streams.ReadReq_Options_UUIDOption{Content: &streams.ReadReq_Options_UUIDOption_Structured{Structured: &shared.Empty{}}},
		ReadDirection: streams.ReadReq_Options_Forwards,
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rd.Recv()
	notLeaderTrailer(t, "Read on a follower with requires-leader", err, rd.Trailer(), leader)

	// BatchAppend with the header: the call ends.
	call, err := streams.NewStreamsClient(conn).BatchAppend(requireLeader(ctx))
	if err != nil {
		t.Fatal(err)
	}
	send(t, call, batchOne(uuid.New(), "follower", uuid.New()))
	_, err = call.Recv()
	notLeaderTrailer(t, "BatchAppend on a follower with requires-leader", err, call.Trailer(), leader)

	// Without the header: forwarded to the leader, readable everywhere.
	db := kurrentdbtest.Client(t, "esdb://"+follower+"?tls=false")
	ev := esdbEvent()
	if _, err := db.AppendToStream(ctx, "follower", esdb.AppendToStreamOptions{}, ev); err != nil {
		t.Fatalf("append on a follower without requires-leader: %v", err)
	}
	for _, addr := range []string{leader, follower} {
		got := readIDs(t, kurrentdbtest.Client(t, "esdb://"+addr+"?tls=false"), "follower")
		if len(got) != 1 || got[0] != ev.EventID {
			t.Fatalf("stream read on %s: %v, want the forwarded event only", addr, got)
		}
	}
	if n := cl.Node(1).Requests().NotLeader; n != 3 {
		t.Fatalf("the follower counted %d NotLeader answers, want 3", n)
	}
}

// TestOfficialClientFollowsKilledLeader: the official client, given the
// cluster's gossip seeds, finds the leader, and after the leader is killed
// finds the new one; every event acknowledged before and after is there
// once, read through the new leader.
func TestOfficialClientFollowsKilledLeader(t *testing.T) {
	cl := kurrentdbtest.StartCluster(t, kurrentdb.ClusterOptions{ElectionDelay: 200 * time.Millisecond})
	db := kurrentdbtest.Client(t, cl.URL())
	var want []uuid.UUID
	appendOne := func() {
		t.Helper()
		ev := esdbEvent()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := db.AppendToStream(context.Background(), "failover", esdb.AppendToStreamOptions{}, ev)
			if err == nil {
				want = append(want, ev.EventID)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("append not accepted within 30 s: %v", err)
			}
			time.Sleep(50 * time.Millisecond) // the client rediscovers between calls
		}
	}
	for range 5 {
		appendOne()
	}
	if n := cl.Node(0).Requests().Appends; n != 5 {
		t.Fatalf("node 0 (the leader) served %d appends, want 5", n)
	}
	if err := cl.Kill(0); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		appendOne()
	}
	if n := cl.Node(1).Requests().Appends; n != 5 {
		t.Fatalf("node 1 (the new leader) served %d appends, want 5", n)
	}
	got := readIDs(t, db, "failover")
	if len(got) != len(want) {
		t.Fatalf("%d events stored, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %s, want %s", i, got[i], want[i])
		}
	}
}
