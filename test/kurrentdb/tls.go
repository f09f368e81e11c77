package kurrentdb

import (
	"crypto/tls"
	"fmt"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TLSOptions make the server serve gRPC over TLS, as KurrentDB does unless
// it runs --insecure.
type TLSOptions struct {
	// CertFile and KeyFile are the server's certificate (chain) and key, PEM.
	// Required.
	CertFile, KeyFile string
	// CAFile, when set, is named as tlsCAFile in URL, so a client of that
	// URL verifies the server against it. Default "": the system roots.
	CAFile string
}

// secureOptions are the gRPC options of the security settings: TLS
// credentials, and with users the interceptors that authenticate every call
// and check stream access (auth.go, acl.go).
func (s *Server) secureOptions() ([]grpc.ServerOption, error) {
	var out []grpc.ServerOption
	if t := s.opts.TLS; t != nil {
		cert, err := t.load()
		if err != nil {
			return nil, err
		}
		out = append(out, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	}
	if s.users != nil {
		out = append(out, grpc.ChainUnaryInterceptor(s.unaryAuth), grpc.ChainStreamInterceptor(s.streamAuth))
	}
	return out, nil
}

// url is the connection string of the server: tls=false on an insecure
// server; on a TLS one tls=true and, when Options.TLS.CAFile is set,
// tlsCAFile (never credentials: add them as user:password@).
func (s *Server) url() string {
	t := s.opts.TLS
	if t == nil {
		return "esdb://" + s.Addr() + "?tls=false"
	}
	u := "esdb://" + s.Addr() + "?tls=true"
	if t.CAFile != "" {
		u += "&tlsCAFile=" + url.QueryEscape(t.CAFile)
	}
	return u
}

// URLAs is URL with user's credentials.
func (s *Server) URLAs(user, password string) string {
	return "esdb://" + url.UserPassword(user, password).String() + "@" + s.url()[len("esdb://"):]
}

// load reads the certificate and key (a *ConfigError naming them when they
// do not load).
func (t *TLSOptions) load() (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return cert, &ConfigError{Field: "TLS", Reason: fmt.Sprintf("loading %s and %s: %v", t.CertFile, t.KeyFile, err)}
	}
	return cert, nil
}
