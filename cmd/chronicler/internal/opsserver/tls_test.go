package opsserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/opsserver"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestTLS: with a certificate the listener serves HTTPS only (a client
// trusting the CA reads /healthz; plain HTTP gets no answer), pprof stays
// off unless asked, a renewed certificate file is served from the next
// handshake without a restart, and a missing file is an error naming the
// setting.
func TestTLS(t *testing.T) {
	certs := stack.NewCerts(t, "")
	dir := t.TempDir()
	certFile, keyFile := dir+"/tls.crt", dir+"/tls.key"
	copyFile(t, certs.ServerCert, certFile)
	copyFile(t, certs.ServerKey, keyFile)
	srv, err := opsserver.New(opsserver.Config{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, Gatherer: prometheus.NewRegistry(),
		Health: func() error { return nil }, Ready: func() (bool, string) { return true, "active" }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var served []*x509.Certificate
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool(),
		VerifyConnection: func(cs tls.ConnectionState) error { served = append(served, cs.PeerCertificates[0]); return nil }}, DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		t.Helper()
		res, err := client.Get("https://" + srv.Addr() + path)
		if err != nil {
			t.Fatalf("GET %s over TLS: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := get("/healthz"); code != 200 || body != "ok" {
		t.Errorf("/healthz over TLS: %d %q", code, body)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ by default: %d, want 404 (pprof off)", code)
	}
	// Go's TLS server answers a plain HTTP request with a 400 of its own,
	// never the endpoint.
	if res, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + srv.Addr() + "/healthz"); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || strings.TrimSpace(string(b)) == "ok" {
			t.Errorf("plain HTTP: %d %q, want 400 and not the endpoint", res.StatusCode, b)
		}
	}

	// Renew: another certificate (CN renewed) in the same files.
	newCert, newKey, err := certs.Leaf("renewed", &x509.Certificate{Subject: pkix.Name{CommonName: "renewed"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature})
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, newKey, keyFile)
	copyFile(t, newCert, certFile)
	get("/healthz")
	if first := served[0]; first.Subject.CommonName == "renewed" {
		t.Fatalf("the first certificate served is already CN=renewed: the renewal below proves nothing")
	}
	if last := served[len(served)-1]; last.Subject.CommonName != "renewed" {
		t.Errorf("after renewal the listener serves %s, want the renewed certificate (CN=renewed)", last.Subject)
	}

	_, err = opsserver.New(opsserver.Config{Addr: "127.0.0.1:0", CertFile: dir + "/missing.crt", KeyFile: keyFile, Gatherer: prometheus.NewRegistry(),
		Health: func() error { return nil }, Ready: func() (bool, string) { return true, "" }})
	if err == nil || !strings.Contains(err.Error(), "http.tls.cert_file") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing certificate file: %v; want an error naming http.tls.cert_file", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}
