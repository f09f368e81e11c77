package store_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestStoreTLSVerifiedByDefault, against the KurrentDB-compatible server
// with TLS and users: a URL without tls settings but the CA reads $all as
// an admin; a server whose certificate names another host is refused by
// Connect with a TLSError naming it, while the same server is read with
// tlsVerifyCert=false (so the refusal was the verification);
// TransportIssue names tls=false and tlsVerifyCert=false.
func TestStoreTLSVerifiedByDefault(t *testing.T) {
	certs := stack.NewCerts(t, "")
	good := kurrentdbtest.Start(t, kurrentdb.Options{TLS: &kurrentdb.TLSOptions{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CAFile}, Users: kurrentdb.DefaultUsers()})
	wrong := kurrentdbtest.Start(t, kurrentdb.Options{TLS: &kurrentdb.TLSOptions{CertFile: certs.WrongHostCert, KeyFile: certs.WrongHostKey, CAFile: certs.CAFile}, Users: kurrentdb.DefaultUsers()})
	read := func(url string, wait time.Duration) (*store.Client, error) {
		t.Helper()
		c, err := store.Connect(store.ClientConfig{URL: url, Username: "admin", Password: "changeit"})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		err = store.Bounded(ctx, func(ctx context.Context) error { _, err := c.ReadLastAll(ctx); return err })
		if !errors.Is(err, store.ErrNoAnswer) {
			t.Cleanup(func() { c.Close() })
		}
		return c, err
	}
	// The URL names tls=true and tlsCAFile: drop tls=true to use the default.
	goodURL := strings.Replace(good.URL(), "tls=true&", "", 1)
	c, err := read(goodURL, 10*time.Second)
	if err != nil {
		t.Fatalf("verified TLS, tls left to its default: %v", err)
	}
	if found, _ := c.TransportIssue(); found != "" {
		t.Errorf("verified TLS: issue %q, want none", found)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CheckTLS(ctx); err != nil {
		t.Errorf("CheckTLS of a verified server: %v", err)
	}

	wrongURL := strings.Replace(wrong.URL(), "tls=true&", "", 1)
	_, err = store.Connect(store.ClientConfig{URL: wrongURL, Username: "admin", Password: "changeit"})
	var te *store.TLSError
	if !errors.As(err, &te) || te.Target != wrong.Addr() || !strings.Contains(err.Error(), "tlsCAFile") {
		t.Errorf("Connect to the wrong-host server: %v; want a TLSError naming %s", err, wrong.Addr())
	} else {
		t.Logf("refused: %v", err)
	}
	c, err = read(wrongURL+"&tlsVerifyCert=false", 10*time.Second)
	if err != nil {
		t.Errorf("wrong-host server, tlsVerifyCert=false: %v; want it read (the refusal above was the verification)", err)
	} else if found, fix := c.TransportIssue(); !strings.Contains(found, "certificate not verified") || !strings.Contains(fix, "tlsVerifyCert=false") {
		t.Errorf("tlsVerifyCert=false: %q / %q", found, fix)
	}
	plain := kurrentdbtest.Start(t, kurrentdb.Options{})
	c, err = read(plain.URL(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if found, fix := c.TransportIssue(); !strings.HasPrefix(found, "tls=false: plaintext") || !strings.Contains(fix, "remove tls=false") {
		t.Errorf("tls=false: %q / %q", found, fix)
	}
}

// TestCredentialsOnChroniclersOwnConnection: BatchAppend and the $all
// subscription of a single node go over a gRPC connection of Chronicler's
// own (direct.go), which must carry the connection string's TLS settings
// and the store user's credentials as the official client's calls do.
// Against a server with TLS and users, where an anonymous call may not
// append, an appender on the BatchAppend path stores an event with the
// URL's credentials, and Subscribe, with store.username/password, delivers
// it.
func TestCredentialsOnChroniclersOwnConnection(t *testing.T) {
	certs := stack.NewCerts(t, "")
	srv := kurrentdbtest.Start(t, kurrentdb.Options{TLS: &kurrentdb.TLSOptions{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CAFile}, Users: kurrentdb.DefaultUsers()})
	anon, err := store.Connect(store.ClientConfig{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { anon.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if access, err := anon.ProbeWrite(ctx, "item-1"); access != store.Denied {
		t.Fatalf("anonymous append to item-1: %v (%v); want it denied, or this test proves nothing", access, err)
	}

	r := start(t, appendPath{batch: true, url: strings.Replace(srv.URL(), "esdb://", "esdb://admin:changeit@", 1)}, nil, store.Config{})
	r.feed(t, []tx{{lsn: 100, events: []store.Event{change(1, 100)}}})
	r.waitDurable(t, 100)

	c, err := store.Connect(store.ClientConfig{URL: srv.URL(), Username: "admin", Password: "changeit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	out := make(chan *store.Recorded, 1)
	go c.Subscribe(ctx, store.Filter{ByStream: true, Prefixes: []string{"item-"}}, contract.StoreFrom{Start: true}, out, slog.New(slog.DiscardHandler))
	select {
	case ev := <-out:
		if ev.Stream != "item-1" || string(ev.Data) != `{"id":1,"at":100}` {
			t.Errorf("subscription delivered %s %s; want item-1's event", ev.Stream, ev.Data)
		}
	case <-ctx.Done():
		t.Fatal("the subscription delivered nothing")
	}
}
