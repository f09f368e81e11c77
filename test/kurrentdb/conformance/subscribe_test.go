package conformance_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
)

// received is what a subscription delivered, in order.
type received struct {
	events      []*esdb.ResolvedEvent
	caughtUp    int
	checkpoints []esdb.Position
	dropped     *esdb.SubscriptionDropped
}

// collect receives from sub until stop says so or the subscription drops.
// The subscription's own context deadline (see ctx) bounds the wait.
func collect(t testing.TB, sub *esdb.Subscription, stop func(*received) bool) *received {
	t.Helper()
	r := &received{}
	for !stop(r) {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			r.events = append(r.events, ev.EventAppeared)
		case ev.CaughtUp != nil:
			r.caughtUp++
		case ev.CheckPointReached != nil:
			r.checkpoints = append(r.checkpoints, *ev.CheckPointReached)
		case ev.SubscriptionDropped != nil:
			r.dropped = ev.SubscriptionDropped
			return r
		}
	}
	return r
}

func untilEvents(n int) func(*received) bool {
	return func(r *received) bool { return len(r.events) >= n }
}

func untilCaughtUp(r *received) bool { return r.caughtUp > 0 }

// TestSubscribeToStreamCatchUpThenLive: from Start a stream subscription
// delivers the existing events, then caught_up, then events appended later,
// each once, in revision order.
func TestSubscribeToStreamCatchUpThenLive(t *testing.T) {
	s := newStream("substream")
	old := evs(3, "Before")
	appendOK(t, s, esdb.NoStream{}, old...)
	sub, err := db.SubscribeToStream(ctx(t), s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r := collect(t, sub, untilCaughtUp)
	if r.dropped != nil || !slices.Equal(ids(r.events), dataIDs(old)) {
		t.Fatalf("catch-up = %v (dropped %v), want %v", ids(r.events), r.dropped, dataIDs(old))
	}
	live := evs(2, "After")
	appendOK(t, s, esdb.Revision(2), live...)
	r = collect(t, sub, untilEvents(2))
	if r.dropped != nil || !slices.Equal(ids(r.events), dataIDs(live)) || !slices.Equal(revisions(r.events), []uint64{3, 4}) {
		t.Fatalf("live = %v %v (dropped %v), want %v at 3, 4", ids(r.events), revisions(r.events), r.dropped, dataIDs(live))
	}
}

// TestSubscribeToStreamFromRevisionIsExclusive: from revision N the first
// event delivered is N+1; from End only new events come.
func TestSubscribeToStreamFromRevisionIsExclusive(t *testing.T) {
	s := newStream("subexcl")
	appendOK(t, s, esdb.NoStream{}, evs(4, "E")...)
	sub, err := db.SubscribeToStream(ctx(t), s, esdb.SubscribeToStreamOptions{From: esdb.Revision(1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if r := collect(t, sub, untilCaughtUp); !slices.Equal(revisions(r.events), []uint64{2, 3}) {
		t.Fatalf("from revision 1 = %v, want [2 3]", revisions(r.events))
	}

	end, err := db.SubscribeToStream(ctx(t), s, esdb.SubscribeToStreamOptions{From: esdb.End{}})
	if err != nil {
		t.Fatal(err)
	}
	defer end.Close()
	if r := collect(t, end, untilCaughtUp); len(r.events) != 0 {
		t.Fatalf("from End delivered old events %v", revisions(r.events))
	}
	appendOK(t, s, esdb.Revision(3), evs(1, "New")...)
	if r := collect(t, end, untilEvents(1)); !slices.Equal(revisions(r.events), []uint64{4}) {
		t.Fatalf("from End live = %v, want [4]", revisions(r.events))
	}
}

// TestSubscribeToMissingStream: subscribing to a stream that does not exist
// yet is fine: caught_up, then its first event when written.
func TestSubscribeToMissingStream(t *testing.T) {
	s := newStream("subnew")
	sub, err := db.SubscribeToStream(ctx(t), s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if r := collect(t, sub, untilCaughtUp); r.dropped != nil || len(r.events) != 0 {
		t.Fatalf("missing stream: events %v dropped %v", revisions(r.events), r.dropped)
	}
	e := evs(1, "First")
	appendOK(t, s, esdb.NoStream{}, e...)
	if r := collect(t, sub, untilEvents(1)); !slices.Equal(ids(r.events), dataIDs(e)) {
		t.Fatalf("got %v, want %v", ids(r.events), dataIDs(e))
	}
}

// TestSubscribeToAllFromPosition: a $all subscription from position P starts
// after P (exclusive), catches up, then delivers live events, in $all order.
func TestSubscribeToAllFromPosition(t *testing.T) {
	a, b := newStream("suball"), newStream("suball")
	first := appendOK(t, a, esdb.NoStream{}, evs(1, "A0")...)
	want := evs(1, "B0")
	appendOK(t, b, esdb.NoStream{}, want...)
	more := evs(1, "A1")
	appendOK(t, a, esdb.Revision(0), more...)
	want = append(want, more...)

	sub, err := db.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{From: esdb.Position{Commit: first.CommitPosition, Prepare: first.PreparePosition}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r := collect(t, sub, untilCaughtUp)
	if got := onlyStreams(r.events, a, b); !slices.Equal(ids(got), dataIDs(want)) {
		t.Fatalf("catch-up from %d = %v, want %v (exclusive start)", first.CommitPosition, ids(got), dataIDs(want))
	}
	live := evs(2, "Live")
	appendOK(t, b, esdb.Any{}, live...)
	var got []*esdb.ResolvedEvent
	for len(got) < 2 {
		r := collect(t, sub, untilEvents(1))
		if r.dropped != nil {
			t.Fatalf("dropped: %v", r.dropped.Error)
		}
		got = append(got, onlyStreams(r.events, a, b)...)
	}
	if !slices.Equal(ids(got), dataIDs(live)) {
		t.Fatalf("live = %v, want %v", ids(got), dataIDs(live))
	}
}

// TestFilteredSubscriptionByStreamPrefix: a $all subscription filtered by
// stream prefix delivers exactly the matching streams' events, in order,
// and checkpoints whose positions never go backwards and never pass an
// undelivered matching event.
func TestFilteredSubscriptionByStreamPrefix(t *testing.T) {
	cat := "pfx" + uuid.NewString()[:8]
	marker := appendOK(t, newStream("marker"), esdb.NoStream{}, evs(1, "Marker")...)
	var want []esdb.EventData
	for i := 0; i < 5; i++ {
		appendOK(t, newStream("noise"), esdb.NoStream{}, evs(3, "Noise")...)
		e := evs(1, "Match")
		appendOK(t, newStream(cat), esdb.NoStream{}, e...)
		want = append(want, e...)
	}
	sub, err := db.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{
		From:               esdb.Position{Commit: marker.CommitPosition, Prepare: marker.PreparePosition},
		Filter:             &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{cat + "-"}},
		MaxSearchWindow:    2,
		CheckpointInterval: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r := collect(t, sub, untilCaughtUp)
	if r.dropped != nil || !slices.Equal(ids(r.events), dataIDs(want)) {
		t.Fatalf("filtered = %v (dropped %v), want %v", ids(r.events), r.dropped, dataIDs(want))
	}
	if len(r.checkpoints) == 0 {
		t.Fatal("no checkpoint during catch-up over 20 events with a window of 2")
	}
	checkCheckpoints(t, r, cat+"-")
}

// checkCheckpoints: positions never decrease, and every checkpoint comes after
// every matching event at or before its position was delivered.
func checkCheckpoints(t *testing.T, r *received, prefix string) {
	t.Helper()
	for i := 1; i < len(r.checkpoints); i++ {
		if r.checkpoints[i].Commit < r.checkpoints[i-1].Commit {
			t.Errorf("checkpoint %d at %d after one at %d", i, r.checkpoints[i].Commit, r.checkpoints[i-1].Commit)
		}
	}
	last := r.checkpoints[len(r.checkpoints)-1]
	// Resuming from the last checkpoint must not lose a matching event: every
	// delivered event at or below it was delivered before it.
	sub, err := db.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{
		From:   last,
		Filter: &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: []string{prefix}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	resumed := collect(t, sub, untilCaughtUp)
	seen := len(r.events) - len(resumed.events)
	if seen < 0 || !slices.Equal(ids(resumed.events), ids(r.events[seen:])) {
		t.Errorf("resuming from checkpoint %d gave %v, want a suffix of %v", last.Commit, ids(resumed.events), ids(r.events))
	}
	for _, e := range r.events[:seen] {
		if e.OriginalEvent().Position.Commit > last.Commit {
			t.Errorf("event at %d is neither before the checkpoint %d nor redelivered after it", e.OriginalEvent().Position.Commit, last.Commit)
		}
	}
}

// TestFilteredSubscriptionByEventTypeRegex: filtering $all by an event type
// regex delivers only matching types, live as well as in catch-up.
func TestFilteredSubscriptionByEventTypeRegex(t *testing.T) {
	typ := "Regex" + uuid.NewString()[:8]
	marker := appendOK(t, newStream("marker"), esdb.NoStream{}, evs(1, "Marker")...)
	s := newStream("rx")
	match := evs(2, typ+"Happened")
	appendOK(t, s, esdb.NoStream{}, match[0])
	appendOK(t, s, esdb.Any{}, evs(2, "Other")...)
	sub, err := db.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{
		From:   esdb.Position{Commit: marker.CommitPosition, Prepare: marker.PreparePosition},
		Filter: &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^" + typ},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if r := collect(t, sub, untilCaughtUp); !slices.Equal(ids(r.events), dataIDs(match[:1])) {
		t.Fatalf("catch-up = %v, want %v", ids(r.events), dataIDs(match[:1]))
	}
	appendOK(t, s, esdb.Any{}, evs(1, "Other")...)
	appendOK(t, s, esdb.Any{}, match[1])
	if r := collect(t, sub, untilEvents(1)); !slices.Equal(ids(r.events), dataIDs(match[1:])) {
		t.Fatalf("live = %v, want %v", ids(r.events), dataIDs(match[1:]))
	}
}

// TestSystemEventsExcludedByRegex: the usual client filter ^[^\$].* on
// event types hides $metadata and $streamDeleted but keeps user events.
func TestSystemEventsExcludedByRegex(t *testing.T) {
	marker := appendOK(t, newStream("marker"), esdb.NoStream{}, evs(1, "Marker")...)
	s := newStream("sys")
	e := evs(1, "User")
	appendOK(t, s, esdb.NoStream{}, e...)
	if _, err := db.SetStreamMetadata(ctx(t), s, esdb.AppendToStreamOptions{}, esdb.StreamMetadata{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TombstoneStream(ctx(t), s, esdb.TombstoneStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	sub, err := db.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{
		From:   esdb.Position{Commit: marker.CommitPosition, Prepare: marker.PreparePosition},
		Filter: esdb.ExcludeSystemEventsFilter(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r := collect(t, sub, untilCaughtUp)
	if got := onlyStreams(r.events, s, "$$"+s); !slices.Equal(ids(got), dataIDs(e)) {
		t.Fatalf("got %v, want only the user event %v", ids(got), dataIDs(e))
	}
	all := onlyStreams(readAll(t, esdb.ReadAllOptions{From: esdb.Position{Commit: marker.CommitPosition, Prepare: marker.PreparePosition}}, 1000), s, "$$"+s)
	var types []string
	for _, ev := range all {
		types = append(types, ev.OriginalEvent().EventType)
	}
	if !slices.Equal(types, []string{"User", "$metadata", "$streamDeleted"}) {
		t.Fatalf("unfiltered $all types = %v, want [User $metadata $streamDeleted]", types)
	}
}

// TestSubscriptionDeadline: a subscription whose deadline passes is dropped
// with DeadlineExceeded.
func TestSubscriptionDeadline(t *testing.T) {
	d := 200 * time.Millisecond
	sub, err := db.SubscribeToStream(ctx(t), newStream("deadline"), esdb.SubscribeToStreamOptions{Deadline: &d})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r := collect(t, sub, func(*received) bool { return false })
	if r.dropped == nil || grpcCode(r.dropped.Error) != "DeadlineExceeded" {
		t.Fatalf("dropped = %+v, want DeadlineExceeded", r.dropped)
	}
}

func subscription() *streams.ReadReq_Options_Subscription {
	return &streams.ReadReq_Options_Subscription{Subscription: &streams.ReadReq_Options_SubscriptionOptions{}}
}

// TestCaughtUpAndCheckpointCarryTimeAndPosition: from 24.10.5 on,
// caught_up carries the server's time and the subscription's checkpoint
// (a stream subscription: the last revision sent, none before the first
// event; $all: the last position sent or started from), and a filtered
// $all subscription's checkpoints carry the server's time
// (Enumerator.StreamSubscription.cs, Enumerator.AllSubscription.cs,
// Enumerator.AllSubscriptionFiltered.cs, Streams.Read.cs ResponseConverter;
// fields of streams.proto newer than the Go client's, read raw).
func TestCaughtUpAndCheckpointCarryTimeAndPosition(t *testing.T) {
	s := newStream("caughtup")
	appendOK(t, s, esdb.NoStream{}, evs(3, "E")...)
	streamOpts := func(name string) *streams.ReadReq_Options {
		return &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_Stream{Stream: &streams.ReadReq_Options_StreamOptions{
				StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
				RevisionOption:   &streams.ReadReq_Options_StreamOptions_Start{Start: &shared.Empty{}}}},
			CountOption: subscription(),
		}
	}
	t.Run("stream", func(t *testing.T) {
		msgs, err := rawRead(t, streamOpts(s), untilCaughtUpRaw)
		if err != nil || !untilCaughtUpRaw(msgs) {
			t.Fatalf("subscription ended before caught_up: %v", err)
		}
		f := caughtUpFields(t, msgs[len(msgs)-1])
		if !nearNow(f.timestamp) || f.streamRevision == nil || *f.streamRevision != 2 || f.position != nil {
			t.Fatalf("caught_up = time %v revision %v position %v, want now, 2, none", f.timestamp, f.streamRevision, f.position)
		}
	})
	t.Run("missing stream", func(t *testing.T) {
		msgs, err := rawRead(t, streamOpts(newStream("caughtupnone")), untilCaughtUpRaw)
		if err != nil || !untilCaughtUpRaw(msgs) {
			t.Fatalf("subscription ended before caught_up: %v", err)
		}
		f := caughtUpFields(t, msgs[len(msgs)-1])
		if !nearNow(f.timestamp) || f.streamRevision != nil || f.position != nil {
			t.Fatalf("caught_up = time %v revision %v position %v, want now and no checkpoint", f.timestamp, f.streamRevision, f.position)
		}
	})
	t.Run("$all", func(t *testing.T) {
		last := appendOK(t, s, esdb.Any{}, evs(1, "Last")...)
		msgs, err := rawRead(t, &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{AllOption: &streams.ReadReq_Options_AllOptions_Position{
				Position: &streams.ReadReq_Options_Position{CommitPosition: last.CommitPosition, PreparePosition: last.PreparePosition}}}},
			CountOption: subscription(),
		}, untilCaughtUpRaw)
		if err != nil || !untilCaughtUpRaw(msgs) {
			t.Fatalf("subscription ended before caught_up: %v", err)
		}
		f := caughtUpFields(t, msgs[len(msgs)-1])
		if !nearNow(f.timestamp) || f.streamRevision != nil || f.position == nil || f.position[0] < last.CommitPosition {
			t.Fatalf("caught_up = time %v revision %v position %v, want now, none, at or after %d", f.timestamp, f.streamRevision, f.position, last.CommitPosition)
		}
	})
	t.Run("filtered $all", func(t *testing.T) {
		cat := "cupf" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
		marker := appendOK(t, newStream("marker"), esdb.NoStream{}, evs(1, "Marker")...)
		var lastPos uint64
		for range 4 {
			appendOK(t, newStream("noise"), esdb.NoStream{}, evs(2, "Noise")...)
			lastPos = appendOK(t, newStream(cat), esdb.NoStream{}, evs(1, "Match")...).CommitPosition
		}
		msgs, err := rawRead(t, &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{AllOption: &streams.ReadReq_Options_AllOptions_Position{
				Position: &streams.ReadReq_Options_Position{CommitPosition: marker.CommitPosition, PreparePosition: marker.PreparePosition}}}},
			CountOption: subscription(),
			FilterOption: &streams.ReadReq_Options_Filter{Filter: &streams.ReadReq_Options_FilterOptions{
				Filter:                       &streams.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: &streams.ReadReq_Options_FilterOptions_Expression{Prefix: []string{cat + "-"}}},
				Window:                       &streams.ReadReq_Options_FilterOptions_Max{Max: 1},
				CheckpointIntervalMultiplier: 1,
			}},
		}, untilCaughtUpRaw)
		if err != nil || !untilCaughtUpRaw(msgs) {
			t.Fatalf("subscription ended before caught_up: %v", err)
		}
		checkpoints, events := 0, 0
		for _, m := range msgs {
			switch {
			case m.GetCheckpoint() != nil:
				checkpoints++
				if f := checkpointFields(t, m); !nearNow(f.timestamp) {
					t.Fatalf("checkpoint at %d has time %v, want the server's time", m.GetCheckpoint().GetCommitPosition(), f.timestamp)
				}
			case m.GetEvent() != nil:
				events++
			}
		}
		if events != 4 || checkpoints == 0 {
			t.Fatalf("%d events and %d checkpoints before caught_up, want 4 and some (window 1)", events, checkpoints)
		}
		f := caughtUpFields(t, msgs[len(msgs)-1])
		if !nearNow(f.timestamp) || f.position == nil || f.position[0] < lastPos {
			t.Fatalf("caught_up = time %v position %v, want now, at or after %d", f.timestamp, f.position, lastPos)
		}
	})
}
