package kurrentdb

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// User is an account of the server's basic authentication (Options.Users).
type User struct {
	Name, Password string
	// Groups are the user's roles besides its name, e.g. "$admins",
	// "$ops" or a custom group named in an ACL.
	Groups []string
}

// DefaultUsers are KurrentDB's two built-in accounts with their documented
// default passwords: admin ($admins) and ops ($ops).
func DefaultUsers() []User {
	return []User{{Name: "admin", Password: "changeit", Groups: []string{roleAdmins}}, {Name: "ops", Password: "changeit", Groups: []string{roleOps}}}
}

// users is the account table; nil on an insecure server (no
// authentication, no ACLs).
type users struct {
	mu   sync.RWMutex
	byID map[string]User
}

func newUsers(list []User) *users {
	u := &users{byID: map[string]User{}}
	for _, x := range list {
		u.byID[x.Name] = x
	}
	return u
}

// SetPassword changes a user's password, as KurrentDB's ResetPassword does:
// calls with the old password fail from then on (Unauthenticated). It is an
// error on an insecure server or for an unknown user.
func (s *Server) SetPassword(name, password string) error {
	if s.users == nil {
		return errors.New("kurrentdb: the server has no users (start it with Options.Users)")
	}
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	u, ok := s.users.byID[name]
	if !ok {
		return errors.New("kurrentdb: no user " + name)
	}
	u.Password = password
	s.users.byID[name] = u
	return nil
}

// principal is who a call runs as.
type principal struct {
	name      string
	roles     []string // name and groups
	anonymous bool
}

func (p principal) has(role string) bool { return slices.Contains(p.roles, role) }

// admin: the $admins role, or the admin account itself, bypasses stream
// access checks (WellKnownAssertions.Admin).
func (p principal) admin() bool { return p.has(roleAdmins) || p.name == "admin" }

// authenticate reads the call's Authorization header: none is the
// anonymous principal; basic credentials of a known user with its password
// are that user; anything else is Unauthenticated (the real server's
// authentication middleware answers HTTP 401, which gRPC clients see as
// Unauthenticated).
func (s *Server) authenticate(ctx context.Context) (principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return principal{anonymous: true}, nil
	}
	scheme, cred, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Basic") {
		return principal{}, status.Error(codes.Unauthenticated, "unsupported authentication scheme "+scheme)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return principal{}, status.Error(codes.Unauthenticated, "malformed basic credentials")
	}
	name, pw, _ := strings.Cut(string(raw), ":")
	s.users.mu.RLock()
	u, ok := s.users.byID[name]
	s.users.mu.RUnlock()
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(pw)) != 1 {
		return principal{}, status.Error(codes.Unauthenticated, "Bad HTTP authentication: wrong user name or password")
	}
	return principal{name: name, roles: append([]string{name}, u.Groups...)}, nil
}

// accessDenied is RpcExceptions.AccessDenied: PermissionDenied "Access
// Denied" with the exception trailer, which the official clients map to
// their access-denied error.
func accessDenied(setTrailer func(metadata.MD)) error {
	setTrailer(metadata.Pairs("exception", "access-denied"))
	return status.Error(codes.PermissionDenied, "Access Denied")
}

// unaryAuth authenticates every unary call and checks delete access for
// Delete and Tombstone.
func (s *Server) unaryAuth(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	p, err := s.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	var name string
	switch r := req.(type) {
	case *streams.DeleteReq:
		name = string(r.GetOptions().GetStreamIdentifier().GetStreamName())
	case *streams.TombstoneReq:
		name = string(r.GetOptions().GetStreamIdentifier().GetStreamName())
	default:
		return handler(ctx, req)
	}
	if !s.allowed(p, name, actDelete) {
		return nil, accessDenied(unaryTrailer(ctx))
	}
	return handler(ctx, req)
}

// streamAuth authenticates every streaming call and checks each request as
// the handler receives it (guardedStream).
func (s *Server) streamAuth(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	p, err := s.authenticate(ss.Context())
	if err != nil {
		return err
	}
	return handler(srv, &guardedStream{ServerStream: ss, s: s, p: p})
}

// guardedStream checks access as requests arrive: a read (stream, $all,
// subscription) needs read access; an append's options write access, and
// a denied append is answered after the client has sent the whole request
// (an early end would make the official client's Send fail with EOF); a
// BatchAppend request's options write access to its stream, a denied one
// answered AccessDenied on the call at once (Streams.BatchAppend.cs) while
// the call goes on, its later requests ignored by the handler as requests
// of an id that is not pending. Sends are serialised here, since denials
// are sent from the receiving goroutine.
type guardedStream struct {
	grpc.ServerStream
	s      *Server
	p      principal
	sendMu sync.Mutex
}

func (g *guardedStream) SendMsg(m any) error {
	g.sendMu.Lock()
	defer g.sendMu.Unlock()
	return g.ServerStream.SendMsg(m)
}

func (g *guardedStream) RecvMsg(m any) error {
	for {
		if err := g.ServerStream.RecvMsg(m); err != nil {
			return err
		}
		switch r := m.(type) {
		case *streams.ReadReq:
			name := "$all"
			if so := r.GetOptions().GetStream(); so != nil {
				name = string(so.GetStreamIdentifier().GetStreamName())
			}
			if !g.s.allowed(g.p, name, actRead) {
				return accessDenied(g.SetTrailer)
			}
		case *streams.AppendReq:
			if o := r.GetOptions(); o != nil && !g.s.allowed(g.p, string(o.GetStreamIdentifier().GetStreamName()), actWrite) {
				for {
					if err := g.ServerStream.RecvMsg(new(streams.AppendReq)); err != nil {
						if errors.Is(err, io.EOF) {
							break
						}
						return err
					}
				}
				return accessDenied(g.SetTrailer)
			}
		case *streams.BatchAppendReq:
			if o := r.GetOptions(); o != nil && !g.s.allowed(g.p, string(o.GetStreamIdentifier().GetStreamName()), actWrite) {
				if err := g.SendMsg(&streams.BatchAppendResp{
					CorrelationId:    r.GetCorrelationId(),
					StreamIdentifier: o.GetStreamIdentifier(),
					Result:           &streams.BatchAppendResp_Error{Error: rpcStatus(codes.PermissionDenied, "AccessDenied", &shared.AccessDenied{})},
				}); err != nil {
					return err
				}
				continue
			}
		}
		return nil
	}
}
