package conformance_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"
)

// supportedMethods asks the server's ServerFeatures service.
func supportedMethods(t *testing.T) *serverfeatures.SupportedMethods {
	t.Helper()
	got, err := serverfeatures.NewServerFeaturesClient(grpcConn(t)).GetSupportedMethods(ctx(t), &shared.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestServerFeaturesListsServicesAndFlags: GetSupportedMethods lists, in
// lowercase, every method of the client services the server maps, with the
// real server's feature flags (ServerFeatures.cs): Streams read
// [position events], batchappend [deadline_duration], append, delete and
// tombstone none; every persistent-subscriptions method [stream all]; the
// version as three numbers (the official clients parse each part).
func TestServerFeaturesListsServicesAndFlags(t *testing.T) {
	got := supportedMethods(t)
	if !regexp.MustCompile(`^24\.10\.\d+$`).MatchString(got.GetEventStoreServerVersion()) {
		t.Errorf("version %q, want 24.10.<patch>", got.GetEventStoreServerVersion())
	}
	features := map[string][]string{}
	for _, m := range got.GetMethods() {
		key := m.GetServiceName() + "/" + m.GetMethodName()
		if key != strings.ToLower(key) {
			t.Errorf("%s is not lowercase", key)
		}
		if _, dup := features[key]; dup {
			t.Errorf("%s listed twice", key)
		}
		features[key] = m.GetFeatures()
		if strings.HasPrefix(key, "event_store.client.persistent_subscriptions.persistentsubscriptions/") && !slices.Equal(m.GetFeatures(), []string{"stream", "all"}) {
			t.Errorf("%s features %v, want [stream all]", key, m.GetFeatures())
		}
	}
	want := map[string][]string{
		"event_store.client.streams.streams/read":                               {"position", "events"},
		"event_store.client.streams.streams/append":                             nil,
		"event_store.client.streams.streams/delete":                             nil,
		"event_store.client.streams.streams/tombstone":                          nil,
		"event_store.client.streams.streams/batchappend":                        {"deadline_duration"},
		"event_store.client.server_features.serverfeatures/getsupportedmethods": nil,
	}
	for key, flags := range want {
		have, ok := features[key]
		if !ok {
			t.Errorf("%s not listed", key)
			continue
		}
		if !slices.Equal(have, flags) {
			t.Errorf("%s features %v, want %v", key, have, flags)
		}
	}
}

// TestUnlistedServicesAnswerUnimplemented: a client service the server does
// not list is not mapped, and a call to it answers Unimplemented "Service
// is unimplemented." as ASP.NET Core gRPC answers for a service a server
// does not map (e.g. projections on a node without them); a method a
// mapped service does not have answers "Method is unimplemented.". Against
// a real server that lists every service only the latter is checked.
func TestUnlistedServicesAnswerUnimplemented(t *testing.T) {
	listed := map[string]bool{}
	for _, m := range supportedMethods(t).GetMethods() {
		listed[m.GetServiceName()] = true
	}
	conn := grpcConn(t)
	calls := []string{
		"/event_store.client.persistent_subscriptions.PersistentSubscriptions/GetInfo",
		"/event_store.client.projections.Projections/State",
		"/event_store.client.users.Users/Details",
		"/event_store.client.operations.Operations/StopScavenge",
		"/event_store.client.gossip.Gossip/Read",
		"/event_store.client.monitoring.Monitoring/Stats",
		"/event_store.client.redaction.Redaction/GetEventPositions",
	}
	checked := 0
	for _, method := range calls {
		svc := strings.ToLower(strings.TrimPrefix(method[:strings.LastIndex(method, "/")], "/"))
		if listed[svc] {
			continue
		}
		checked++
		err := conn.Invoke(ctx(t), method, &emptypb.Empty{}, &emptypb.Empty{})
		if st := statusOf(err); st.Code() != codes.Unimplemented || st.Message() != "Service is unimplemented." {
			t.Errorf("%s (not listed): %v %q, want Unimplemented \"Service is unimplemented.\"", method, st.Code(), st.Message())
		}
	}
	t.Logf("%d of %d services are not listed and were called", checked, len(calls))
	err := conn.Invoke(ctx(t), "/event_store.client.streams.Streams/NoSuchMethod", &emptypb.Empty{}, &emptypb.Empty{})
	if st := statusOf(err); st.Code() != codes.Unimplemented || st.Message() != "Method is unimplemented." {
		t.Errorf("Streams/NoSuchMethod: %v %q, want Unimplemented \"Method is unimplemented.\"", st.Code(), st.Message())
	}
}
