// Package kurrentdbtest starts a KurrentDB-compatible server for a test and
// connects the official client to it.
//
//	func TestX(t *testing.T) {
//		srv := kurrentdbtest.Start(t, kurrentdb.Options{})
//		db := kurrentdbtest.Client(t, srv.URL())
//		...
//	}
//
// Everything started is closed by t.Cleanup. Safe for parallel tests: each
// call starts its own server on a free loopback port.
package kurrentdbtest

import (
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
)

// Start starts a server with opts (the zero value: in memory, free loopback
// port) and closes it when the test ends.
func Start(t testing.TB, opts kurrentdb.Options) *kurrentdb.Server {
	t.Helper()
	srv, err := kurrentdb.Start(opts)
	if err != nil {
		t.Fatalf("starting the KurrentDB-compatible server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing the KurrentDB-compatible server: %v", err)
		}
	})
	return srv
}

// StartCluster starts an in-process cluster (see kurrentdb.Cluster) and
// closes it when the test ends.
func StartCluster(t testing.TB, opts kurrentdb.ClusterOptions) *kurrentdb.Cluster {
	t.Helper()
	c, err := kurrentdb.StartCluster(opts)
	if err != nil {
		t.Fatalf("starting the KurrentDB-compatible cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("closing the KurrentDB-compatible cluster: %v", err)
		}
	})
	return c
}

// Client connects the official client to url and closes it when the test ends.
func Client(t testing.TB, url string) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		t.Fatalf("parsing KurrentDB URL %q: %v", url, err)
	}
	cfg.Logger = esdb.NoopLogging() // its debug lines would flood test output
	db, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatalf("creating KurrentDB client for %q: %v", url, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Store connects the product's store client (capture/store) to url and
// closes it when the test ends.
func Store(t testing.TB, url string) *store.Client {
	t.Helper()
	c, err := store.Connect(store.ClientConfig{URL: url})
	if err != nil {
		t.Fatalf("creating the store client for %q: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
