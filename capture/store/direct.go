package store

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// direct is a gRPC connection of Chronicler's own to a single-node store,
// for the $all subscription (subscribe_direct.go) and BatchAppend (batch.go;
// on a cluster BatchAppend dials the leader with the same options,
// directOptions).
type direct struct {
	conn *grpc.ClientConn
	auth string // "Basic …" when the connection string has credentials
}

// dialDirect makes a connection to cfg's node for purpose (named in
// errors); it returns nil for a cluster connection string (gossip seeds or
// DNS discovery), where finding the node is the official client's job.
// Nothing is dialled until the first call.
func dialDirect(cfg *esdb.Configuration, purpose string) (*direct, error) {
	if cfg == nil || cfg.Address == "" || isCluster(cfg) {
		return nil, nil
	}
	opts, auth, err := directOptions(cfg)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: connecting to %s for %s: %w", cfg.Address, purpose, err)
	}
	return &direct{conn: conn, auth: auth}, nil
}

// directOptions are the dial options of the connection the official client
// would make for cfg (TLS, client certificate, keepalive, message size),
// and the authorization header ("" without credentials).
func directOptions(cfg *esdb.Configuration) ([]grpc.DialOption, string, error) {
	var creds credentials.TransportCredentials
	if cfg.DisableTLS {
		creds = insecure.NewCredentials()
	} else {
		tc := &tls.Config{InsecureSkipVerify: cfg.SkipCertificateVerification, RootCAs: cfg.RootCAs}
		if cfg.UserCertFile != "" && cfg.UserKeyFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.UserCertFile, cfg.UserKeyFile)
			if err != nil {
				return nil, "", fmt.Errorf("store: loading the client certificate %s: %w", cfg.UserCertFile, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(17 << 20)),
	}
	if cfg.KeepAliveInterval >= 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: max(cfg.KeepAliveInterval, 10*time.Second), Timeout: cfg.KeepAliveTimeout, PermitWithoutStream: true,
		}))
	}
	auth := ""
	if cfg.Username != "" {
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password))
	}
	return opts, auth, nil
}

// ctx adds the credentials to a call's context.
func (d *direct) ctx(parent context.Context) context.Context { return withAuth(parent, d.auth) }

// withAuth adds the authorization header auth (directOptions; "": none) to
// a call's context.
func withAuth(parent context.Context, auth string) context.Context {
	if auth == "" {
		return parent
	}
	return metadata.AppendToOutgoingContext(parent, "authorization", auth)
}
