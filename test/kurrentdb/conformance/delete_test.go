package conformance_test

import (
	"slices"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// TestSoftDeleteAndUndelete: a soft-deleted stream reads as not found; an
// append continues the numbering and only the new events are readable.
func TestSoftDeleteAndUndelete(t *testing.T) {
	s := newStream("soft")
	appendOK(t, s, esdb.NoStream{}, evs(3, "Old")...)
	res, err := db.DeleteStream(ctx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(2)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Position.Commit == 0 {
		t.Errorf("delete answered position %+v, want a real position", res.Position)
	}
	if _, err := readStream(t, s, esdb.ReadStreamOptions{}, 10); codeOf(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("read after soft delete: err = %v, want ResourceNotFound", err)
	}
	fresh := evs(2, "New")
	if r := appendOK(t, s, esdb.Any{}, fresh...); r.NextExpectedVersion != 4 {
		t.Fatalf("append after soft delete at %d, want numbering to continue at 3..4", r.NextExpectedVersion)
	}
	got, err := readStream(t, s, esdb.ReadStreamOptions{}, 10)
	if err != nil || !slices.Equal(ids(got), dataIDs(fresh)) || !slices.Equal(revisions(got), []uint64{3, 4}) {
		t.Fatalf("after undelete = %v %v (%v), want only the new events at 3, 4", ids(got), revisions(got), err)
	}
	meta, err := db.GetStreamMetadata(ctx(t), s, esdb.ReadStreamOptions{})
	if err != nil || meta.TruncateBefore() == nil || *meta.TruncateBefore() != 3 {
		t.Fatalf("metadata after undelete = %+v (%v), want $tb 3", meta, err)
	}
}

// TestDeleteWrongExpectedVersion: deleting a stream that does not exist, or
// with a stale revision, fails with FailedPrecondition, which the client
// reports as Unknown.
func TestDeleteWrongExpectedVersion(t *testing.T) {
	_, err := db.DeleteStream(ctx(t), newStream("delmissing"), esdb.DeleteStreamOptions{})
	if codeOf(err) != esdb.ErrorCodeUnknown || grpcCode(err) != "FailedPrecondition" {
		t.Errorf("delete of a missing stream: err = %v (code %d, grpc %s), want Unknown/FailedPrecondition", err, codeOf(err), grpcCode(err))
	}
	s := newStream("delstale")
	appendOK(t, s, esdb.NoStream{}, evs(2, "E")...)
	_, err = db.DeleteStream(ctx(t), s, esdb.DeleteStreamOptions{ExpectedRevision: esdb.Revision(0)})
	if codeOf(err) != esdb.ErrorCodeUnknown || grpcCode(err) != "FailedPrecondition" {
		t.Errorf("stale delete: err = %v, want Unknown/FailedPrecondition", err)
	}
	if got, err := readStream(t, s, esdb.ReadStreamOptions{}, 10); err != nil || len(got) != 2 {
		t.Errorf("stream after failed delete: %d events (%v), want 2", len(got), err)
	}
}

// TestTombstone: a tombstone works on a never-written stream; afterwards
// reads, appends, metadata reads and writes and subscriptions of the stream
// all fail with StreamDeleted, and the tombstone shows in $all.
func TestTombstone(t *testing.T) {
	s := newStream("tomb")
	res, err := db.TombstoneStream(ctx(t), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.NoStream{}})
	if err != nil {
		t.Fatalf("tombstone of a never-written stream: %v", err)
	}
	if _, err := readStream(t, s, esdb.ReadStreamOptions{}, 10); codeOf(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("read: err = %v, want StreamDeleted", err)
	}
	if _, err := db.AppendToStream(ctx(t), s, esdb.AppendToStreamOptions{}, evs(1, "E")...); codeOf(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("append: err = %v, want StreamDeleted", err)
	}
	if _, err := db.GetStreamMetadata(ctx(t), s, esdb.ReadStreamOptions{}); codeOf(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("get metadata: err = %v, want StreamDeleted", err)
	}
	if _, err := db.SetStreamMetadata(ctx(t), s, esdb.AppendToStreamOptions{}, esdb.StreamMetadata{}); codeOf(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("set metadata: err = %v, want StreamDeleted", err)
	}
	if _, err := db.TombstoneStream(ctx(t), s, esdb.TombstoneStreamOptions{}); codeOf(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("second tombstone: err = %v, want StreamDeleted", err)
	}
	if _, err := db.SubscribeToStream(ctx(t), s, esdb.SubscribeToStreamOptions{From: esdb.Start{}}); codeOf(err) != esdb.ErrorCodeStreamDeleted {
		t.Errorf("subscribe: err = %v, want StreamDeleted", err)
	}
	all := onlyStreams(readAll(t, esdb.ReadAllOptions{From: res.Position}, 100), s)
	if len(all) != 1 || all[0].OriginalEvent().EventType != "$streamDeleted" || all[0].OriginalEvent().EventNumber != 1<<63-1 {
		t.Fatalf("$all from the tombstone position = %d events, want one $streamDeleted at revision 2^63-1", len(all))
	}
}

// TestTombstoneEndsStreamSubscription: a live stream subscription receives
// the tombstone event, then drops with stream-deleted.
func TestTombstoneEndsStreamSubscription(t *testing.T) {
	s := newStream("tomblive")
	appendOK(t, s, esdb.NoStream{}, evs(1, "E")...)
	sub, err := db.SubscribeToStream(ctx(t), s, esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	collect(t, sub, untilCaughtUp)
	if _, err := db.TombstoneStream(ctx(t), s, esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(0)}); err != nil {
		t.Fatal(err)
	}
	r := collect(t, sub, func(*received) bool { return false })
	if len(r.events) != 1 || r.events[0].OriginalEvent().EventType != "$streamDeleted" {
		t.Errorf("events before the drop = %v, want the tombstone", ids(r.events))
	}
	if r.dropped == nil || grpcCode(r.dropped.Error) != "FailedPrecondition" {
		t.Fatalf("dropped = %+v, want FailedPrecondition (stream deleted)", r.dropped)
	}
}

// TestStreamMetadataRoundTrip: metadata comes back as written, including
// custom properties; $maxCount and $tb limit what reads return; a metadata
// stream read returns only the latest metadata event.
func TestStreamMetadataRoundTrip(t *testing.T) {
	s := newStream("meta")
	appendOK(t, s, esdb.NoStream{}, evs(5, "E")...)
	var m esdb.StreamMetadata
	m.SetMaxCount(2)
	m.AddCustomProperty("owner", "chronicler")
	if _, err := db.SetStreamMetadata(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, m); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetStreamMetadata(ctx(t), s, esdb.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxCount() == nil || *got.MaxCount() != 2 || got.CustomProperty("owner") != "chronicler" {
		t.Fatalf("metadata = maxCount %v owner %v", got.MaxCount(), got.CustomProperty("owner"))
	}
	if evs, err := readStream(t, s, esdb.ReadStreamOptions{}, 10); err != nil || !slices.Equal(revisions(evs), []uint64{3, 4}) {
		t.Fatalf("with $maxCount 2: %v (%v), want [3 4]", revisions(evs), err)
	}
	var tb esdb.StreamMetadata
	tb.SetTruncateBefore(1)
	if _, err := db.SetStreamMetadata(ctx(t), s, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)}, tb); err != nil {
		t.Fatal(err)
	}
	if evs, err := readStream(t, s, esdb.ReadStreamOptions{}, 10); err != nil || !slices.Equal(revisions(evs), []uint64{1, 2, 3, 4}) {
		t.Fatalf("with $tb 1: %v (%v), want [1 2 3 4]", revisions(evs), err)
	}
	metaEvents, err := readStream(t, "$$"+s, esdb.ReadStreamOptions{}, 10)
	if err != nil || !slices.Equal(revisions(metaEvents), []uint64{1}) {
		t.Fatalf("metadata stream read = %v (%v), want only the latest, revision 1", revisions(metaEvents), err)
	}
}
