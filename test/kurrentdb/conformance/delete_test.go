package conformance_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
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

// TestDeleteWrongExpectedVersionAnswer: a delete or tombstone whose expected
// version does not hold fails with FailedPrecondition, the real server's
// text (both operations are called "Delete") and trailers whose versions
// are integers in the server's form: -1 no stream, -2 any, -4 stream exists
// (RpcExceptions.cs WrongExpectedVersion, Streams.Delete.cs,
// AnyStreamRevision.cs). Clients parse them as numbers: the Node client
// throws outside any handler on "any", the Python one reports the wrong
// error class.
func TestDeleteWrongExpectedVersionAnswer(t *testing.T) {
	existing := newStream("delwev")
	appendOK(t, existing, esdb.NoStream{}, evs(2, "E")...)
	sc := streams.NewStreamsClient(grpcConn(t))
	id := func(s string) *shared.StreamIdentifier { return &shared.StreamIdentifier{StreamName: []byte(s)} }
	cases := []struct {
		name             string
		stream           string
		tombstone        bool
		expected         string // what the request asks, for the case name
		wantExp, wantAct int64
	}{
		{"delete missing, any", newStream("delwev"), false, "any", -2, -1},
		{"delete missing, stream exists", newStream("delwev"), false, "stream_exists", -4, -1},
		{"delete existing, no stream", existing, false, "no_stream", -1, 1},
		{"delete existing, stale revision", existing, false, "revision 0", 0, 1},
		{"tombstone existing, no stream", existing, true, "no_stream", -1, 1},
		{"tombstone existing, stale revision", existing, true, "revision 0", 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var md metadata.MD
			var err error
			if tc.tombstone {
				o := &streams.TombstoneReq_Options{StreamIdentifier: id(tc.stream)}
				switch tc.expected {
				case "no_stream":
					o.ExpectedStreamRevision = &streams.TombstoneReq_Options_NoStream{NoStream: &shared.Empty{}}
				default:
					o.ExpectedStreamRevision = &streams.TombstoneReq_Options_Revision{Revision: 0}
				}
				_, err = sc.Tombstone(ctx(t), &streams.TombstoneReq{Options: o}, grpc.Trailer(&md))
			} else {
				o := &streams.DeleteReq_Options{StreamIdentifier: id(tc.stream)}
				switch tc.expected {
				case "any":
					o.ExpectedStreamRevision = &streams.DeleteReq_Options_Any{Any: &shared.Empty{}}
				case "stream_exists":
					o.ExpectedStreamRevision = &streams.DeleteReq_Options_StreamExists{StreamExists: &shared.Empty{}}
				case "no_stream":
					o.ExpectedStreamRevision = &streams.DeleteReq_Options_NoStream{NoStream: &shared.Empty{}}
				default:
					o.ExpectedStreamRevision = &streams.DeleteReq_Options_Revision{Revision: 0}
				}
				_, err = sc.Delete(ctx(t), &streams.DeleteReq{Options: o}, grpc.Trailer(&md))
			}
			st := statusOf(err)
			if st.Code() != codes.FailedPrecondition {
				t.Fatalf("err = %v, want FailedPrecondition", err)
			}
			wantMsg := fmt.Sprintf("Delete failed due to WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d", tc.stream, tc.wantExp, tc.wantAct)
			if st.Message() != wantMsg {
				t.Errorf("message = %q, want %q", st.Message(), wantMsg)
			}
			want := map[string]string{
				"exception": "wrong-expected-version", "stream-name": tc.stream,
				"expected-version": strconv.FormatInt(tc.wantExp, 10), "actual-version": strconv.FormatInt(tc.wantAct, 10),
			}
			for k, v := range want {
				if got := trailer(t, md, k); got != v {
					t.Errorf("trailer %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}
