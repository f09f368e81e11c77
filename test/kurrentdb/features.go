package kurrentdb

import (
	"context"
	"slices"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// features answers ServerFeatures/GetSupportedMethods the way KurrentDB
// 24.10's ServerFeatures.cs does: every method of every registered client
// service (name containing "client"), names lowercased, with the feature
// flags the real server attaches (Streams Read: position, events;
// Streams BatchAppend: deadline_duration; every persistent-subscriptions
// method: stream, all; Projections Create: track_emitted_streams). The list
// is read from the gRPC server's registered services, as the real one reads
// its endpoints, so it names exactly what this server serves: services it
// does not implement are neither listed nor registered, and answer
// Unimplemented (see unimplemented).
type features struct {
	serverfeatures.UnimplementedServerFeaturesServer
	srv *Server
}

func (f *features) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	info := f.srv.grpc.GetServiceInfo()
	names := make([]string, 0, len(info))
	for name := range info {
		names = append(names, name)
	}
	slices.Sort(names)
	var methods []*serverfeatures.SupportedMethod
	for _, svc := range names {
		if !strings.Contains(svc, "client") {
			continue
		}
		for _, m := range methodOrder(svc, info[svc].Methods) {
			if f.srv.opts.NoBatchAppend && m == "BatchAppend" {
				continue
			}
			methods = append(methods, &serverfeatures.SupportedMethod{
				MethodName:  strings.ToLower(m),
				ServiceName: strings.ToLower(svc),
				Features:    methodFeatures(svc, m),
			})
		}
	}
	return &serverfeatures.SupportedMethods{Methods: methods, EventStoreServerVersion: ServerVersion}, nil
}

// methodOrder returns the names of a service's registered methods in the
// order its proto declares them (the order the real server's endpoints
// follow); grpc.ServiceInfo has them in no particular order.
func methodOrder(svc string, registered []grpc.MethodInfo) []string {
	var names []string
	if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc)); err == nil {
		if sd, ok := d.(protoreflect.ServiceDescriptor); ok {
			for i := range sd.Methods().Len() {
				names = append(names, string(sd.Methods().Get(i).Name()))
			}
		}
	}
	var out []string
	for _, n := range names {
		if slices.ContainsFunc(registered, func(m grpc.MethodInfo) bool { return m.Name == n }) {
			out = append(out, n)
		}
	}
	for _, m := range registered {
		if !slices.Contains(out, m.Name) {
			out = append(out, m.Name)
		}
	}
	return out
}

// methodFeatures are the feature flags ServerFeatures.cs attaches to a
// method (case-sensitive Contains on the service and method names).
func methodFeatures(service, method string) []string {
	switch {
	case strings.Contains(service, "PersistentSubscriptions"):
		return []string{"stream", "all"}
	case strings.Contains(service, "Streams") && strings.Contains(method, "Read"):
		return []string{"position", "events"}
	case strings.Contains(service, "Streams") && strings.Contains(method, "BatchAppend"):
		return []string{"deadline_duration"}
	case strings.Contains(service, "Projections") && strings.Contains(method, "Create"):
		return []string{"track_emitted_streams"}
	}
	return nil
}

// unimplemented answers every call to a service or method this server does
// not register (persistent subscriptions, projections, users, operations,
// gossip, monitoring, ...) as ASP.NET Core gRPC answers a call to one the
// real server does not map: Unimplemented, "Service is unimplemented." for
// an unknown service, "Method is unimplemented." for an unknown method of a
// known one.
func (s *Server) unimplemented(_ any, stream grpc.ServerStream) error {
	full, _ := grpc.MethodFromServerStream(stream) // "/package.Service/Method"
	svc, _, _ := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	if _, ok := s.grpc.GetServiceInfo()[svc]; ok {
		return status.Error(codes.Unimplemented, "Method is unimplemented.")
	}
	return status.Error(codes.Unimplemented, "Service is unimplemented.")
}
