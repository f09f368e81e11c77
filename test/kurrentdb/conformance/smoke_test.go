package conformance_test

import (
	"slices"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

func TestAppendThenReadBack(t *testing.T) {
	stream := newStream("smoke")
	events := evs(3, "SmokeHappened")
	res := appendOK(t, stream, esdb.NoStream{}, events...)
	if res.NextExpectedVersion != 2 {
		t.Fatalf("next expected version = %d, want 2", res.NextExpectedVersion)
	}
	got, err := readStream(t, stream, esdb.ReadStreamOptions{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), dataIDs(events)) {
		t.Fatalf("ids = %v, want %v", ids(got), dataIDs(events))
	}
	for i, e := range got {
		r := e.OriginalEvent()
		if r.EventType != "SmokeHappened" || r.ContentType != "application/json" || string(r.Data) != string(events[i].Data) ||
			string(r.UserMetadata) != string(events[i].Metadata) || r.StreamID != stream || r.EventNumber != uint64(i) {
			t.Errorf("event %d = %+v", i, r)
		}
	}
	if got[2].OriginalEvent().Position.Commit != res.CommitPosition {
		t.Errorf("last event position %d, append answered %d", got[2].OriginalEvent().Position.Commit, res.CommitPosition)
	}
}
