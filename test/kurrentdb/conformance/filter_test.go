package conformance_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
)

// pythonExcludeFilter is the event-type regex the Python client
// (kurrentdbclient) sends by default from read_all, subscribe_to_all and
// get_commit_position: construct_filter_exclude_regex of its
// DEFAULT_EXCLUDE_FILTER (system events \$.+ and PersistentConfig\d+).
const pythonExcludeFilter = `^(?!(\$.+$|PersistentConfig\d+$))`

// subscribeFiltered subscribes to $all after marker with filter and returns
// what arrived until caught_up from the given streams, or the error.
func subscribeFiltered(t *testing.T, marker *esdb.WriteResult, filter *esdb.SubscriptionFilter, streams ...string) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	sub, err := db.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{
		From:   esdb.Position{Commit: marker.CommitPosition, Prepare: marker.PreparePosition},
		Filter: filter,
	})
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	r := collect(t, sub, untilCaughtUp)
	if r.dropped != nil {
		return nil, r.dropped.Error
	}
	return onlyStreams(r.events, streams...), nil
}

func types(events []*esdb.ResolvedEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.OriginalEvent().EventType
	}
	return out
}

// TestFilterRegexIsDotNet: $all filter regexes are .NET regular expressions
// (EventFilter.cs: new Regex(pattern), unanchored Match): the Python
// client's default exclude filter (a negative lookahead) works for
// subscriptions and filtered reads; lookbehind and back-references work;
// \d is Unicode; RE2-only syntax is refused as the real server refuses a
// pattern .NET cannot parse (the exception escapes: Unknown), and
// [[:alpha:]] is no POSIX class.
func TestFilterRegexIsDotNet(t *testing.T) {
	uniq := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	marker := appendOK(t, newStream("marker"), esdb.NoStream{}, evs(1, "Marker")...)
	s := newStream("dotnet")
	appendOK(t, s, esdb.NoStream{}, evs(1, "OrderPlaced")...)
	appendOK(t, s, esdb.Any{}, evs(1, "PersistentConfig1")...)
	appendOK(t, s, esdb.Any{}, evs(1, "PersistentConfig1x")...)
	if _, err := db.SetStreamMetadata(ctx(t), s, esdb.AppendToStreamOptions{}, esdb.StreamMetadata{}); err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{"OrderPlaced", "PersistentConfig1x"}

	t.Run("python default exclude, subscription", func(t *testing.T) {
		got, err := subscribeFiltered(t, marker, &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: pythonExcludeFilter}, s, "$$"+s)
		if err != nil {
			t.Fatalf("subscribe with %s: %v", pythonExcludeFilter, err)
		}
		if !slices.Equal(types(got), wantTypes) {
			t.Fatalf("types = %v, want %v", types(got), wantTypes)
		}
	})

	t.Run("python default exclude, filtered read", func(t *testing.T) {
		msgs, err := rawRead(t, &streams.ReadReq_Options{
			StreamOption: &streams.ReadReq_Options_All{All: &streams.ReadReq_Options_AllOptions{AllOption: &streams.ReadReq_Options_AllOptions_Position{
				Position: &streams.ReadReq_Options_Position{CommitPosition: marker.CommitPosition, PreparePosition: marker.PreparePosition}}}},
			CountOption: &streams.ReadReq_Options_Count{Count: 100_000},
			FilterOption: &streams.ReadReq_Options_Filter{Filter: &streams.ReadReq_Options_FilterOptions{
				Filter: &streams.ReadReq_Options_FilterOptions_EventType{EventType: &streams.ReadReq_Options_FilterOptions_Expression{Regex: pythonExcludeFilter}},
				Window: &streams.ReadReq_Options_FilterOptions_Count{Count: &shared.Empty{}},
			}},
		}, nil)
		if err != nil {
			t.Fatalf("read $all with %s: %v", pythonExcludeFilter, err)
		}
		var got []string
		for _, m := range msgs {
			if e := m.GetEvent().GetEvent(); e != nil && (string(e.GetStreamIdentifier().GetStreamName()) == s || string(e.GetStreamIdentifier().GetStreamName()) == "$$"+s) {
				got = append(got, e.GetMetadata()["type"])
			}
		}
		if !slices.Equal(got, wantTypes) {
			t.Fatalf("types = %v, want %v", got, wantTypes)
		}
	})

	t.Run("lookbehind and back-reference on stream names", func(t *testing.T) {
		cat := "lb" + uniq
		hit := newStream(cat)
		miss := cat + "-zz" + strings.ReplaceAll(uuid.NewString(), "-", "")
		x := "br" + uniq
		echo, noEcho := x+"-"+x, x+"-"+x+"y"
		for _, st := range []string{hit, miss, echo, noEcho} {
			appendOK(t, st, esdb.NoStream{}, evs(1, "Named")...)
		}
		got, err := subscribeFiltered(t, marker, &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Regex: `(?<=^` + cat + `-)[0-9a-f]{32}$|^(br[0-9a-f]{12})-\1$`},
			hit, miss, echo, noEcho)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range got {
			names = append(names, e.OriginalEvent().StreamID)
		}
		if want := []string{hit, echo}; !slices.Equal(names, want) {
			t.Fatalf("streams = %v, want %v", names, want)
		}
	})

	t.Run("unicode digits, no POSIX classes", func(t *testing.T) {
		st := newStream("unicode")
		appendOK(t, st, esdb.NoStream{}, evs(1, "Dg"+uniq+"\u0661")...) // ARABIC-INDIC DIGIT ONE
		appendOK(t, st, esdb.Any{}, evs(1, "Px"+uniq+"a")...)
		got, err := subscribeFiltered(t, marker, &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: `^Dg` + uniq + `\d$|^Px` + uniq + `[[:alpha:]]$`}, st)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"Dg" + uniq + "\u0661"}; !slices.Equal(types(got), want) {
			t.Fatalf("types = %v, want %v (\\d is Unicode; [[:alpha:]] is '[' ':' 'a' 'l' 'p' 'h' then ':]')", types(got), want)
		}
	})

	t.Run("RE2-only syntax is refused", func(t *testing.T) {
		_, err := subscribeFiltered(t, marker, &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: `^(?P<name>Order)`})
		if err == nil || grpcCode(err) != "Unknown" {
			t.Fatalf("subscribe with (?P<name>...): err = %v (grpc %s), want Unknown (.NET cannot parse it)", err, grpcCode(err))
		}
	})
}
