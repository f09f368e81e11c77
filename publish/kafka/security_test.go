package kafka

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// ping makes a client of k and pings the cluster once, bounded.
func ping(t *testing.T, k *ClusterConfig) error {
	t.Helper()
	opts, err := k.ClientOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.RetryTimeout(2*time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// TestSecureBroker, against a real broker with SASL_SSL (SCRAM-SHA-512):
// the cluster configuration as Chronicler builds it connects with the CA
// file and a password file; a certificate for another host is refused by
// default (and accepted only with insecure_skip_verify); a rotated password
// is read from the file by the next connection, without a new
// configuration, while the old password no longer logs in.
func TestSecureBroker(t *testing.T) {
	certs := stack.NewCerts(t, "")
	k := stack.StartSecureKafka(t, stack.KafkaSecurity{Certs: certs})
	k.SetSCRAM(t, "chronicler", "first")
	file := filepath.Join(t.TempDir(), "kafka-pw")
	if err := os.WriteFile(file, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ClusterConfig{Brokers: k.Brokers, TLS: TLSConfig{Enabled: true, CAFile: certs.CAFile},
		SASL: SASLConfig{Mechanism: "SCRAM-SHA-512", User: "chronicler", PasswordFile: file}}
	if errs := cfg.Validate("kafka"); len(errs) > 0 {
		t.Fatal(errs)
	}
	if err := ping(t, &cfg); err != nil {
		t.Fatalf("verified TLS with the password file: %v", err)
	}
	if got := cfg.TransportIssues(); len(got) != 0 {
		t.Errorf("verified TLS: issues %+v, want none", got)
	}

	wrong := cfg
	wrong.Brokers = []string{k.Broker.WrongHostAddr()}
	err := ping(t, &wrong)
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Errorf("wrong-host certificate: %v; want the certificate refused for its host name", err)
	} else {
		t.Logf("refused: %v", err)
	}
	// The same listener with verification off is reached: the refusal
	// above was the host check, not a dead listener.
	wrong.TLS.InsecureSkipVerify = true
	wrong.SASL = SASLConfig{}
	if err := ping(t, &wrong); err != nil {
		t.Errorf("wrong-host listener with insecure_skip_verify: %v; want it reached", err)
	}
	if got := wrong.TransportIssues(); len(got) != 1 || !strings.Contains(got[0].Found, "certificate not verified") {
		t.Errorf("insecure_skip_verify: issues %+v, want certificate not verified", got)
	}

	k.SetSCRAM(t, "chronicler", "second")
	if err := ping(t, &cfg); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("password changed on the broker, file not yet: %v; want SASL_AUTHENTICATION_FAILED (else the rotation below proves nothing)", err)
	}
	if err := os.WriteFile(file, []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ping(t, &cfg); err != nil {
		t.Errorf("after rotating the file: %v; want the new password read at connection", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := ping(t, &cfg); err == nil || !strings.Contains(err.Error(), "kafka.sasl.password_file "+file) {
		t.Errorf("password file gone: %v; want an error naming kafka.sasl.password_file and the file", err)
	}
}

// TestTransportIssues: plaintext is named per broker, with the SASL
// mechanism whose credentials cross in clear.
func TestTransportIssues(t *testing.T) {
	k := ClusterConfig{Brokers: []string{"k1:9092", "k2:9092"}, SASL: SASLConfig{Mechanism: "PLAIN", User: "u", Password: "hunter2"}}
	got := k.TransportIssues()
	if len(got) != 2 || got[1].Broker != "k2:9092" || !strings.HasPrefix(got[0].Found, "plaintext (SASL PLAIN") || !strings.Contains(got[0].Fix, "kafka.tls.enabled") || strings.Contains(got[0].Found, "hunter2") {
		t.Errorf("plaintext: %+v", got)
	}
}
