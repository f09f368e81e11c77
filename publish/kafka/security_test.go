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

	"github.com/twmb/franz-go/pkg/kadm"
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

// TestProbeACLs, against a real broker enforcing ACLs, as a principal with
// WRITE on one topic only: WRITE there is Granted and READ NotGranted, a
// topic without any ACL for it is Undescribable, a missing topic it may
// describe is NoTopic, and ACLs on other resources are left out; in need's
// order.
func TestProbeACLs(t *testing.T) {
	certs := stack.NewCerts(t, "")
	k := stack.StartSecureKafka(t, stack.KafkaSecurity{Certs: certs})
	k.SetSCRAM(t, "chronicler", "pw")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, topic := range []string{"granted", "hidden"} {
		if _, err := k.Admin(t).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	k.SetACL(t, "User:chronicler", "topic", "granted", false, "Write", true)
	k.SetACL(t, "User:chronicler", "topic", "absent", false, "Write", true)
	cfg := ClusterConfig{Brokers: k.Brokers, TLS: TLSConfig{Enabled: true, CAFile: certs.CAFile},
		SASL: SASLConfig{Mechanism: "SCRAM-SHA-512", User: "chronicler", Password: "pw"}}
	opts, err := cfg.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	need := []ACL{
		{Resource: "topic", Name: "granted", Operation: "Write"},
		{Resource: "transactional-id", Name: "chronicler-x", Prefixed: true, Operation: "Write"},
		{Resource: "topic", Name: "granted", Operation: "Read"},
		{Resource: "topic", Name: "hidden", Operation: "Write"},
		{Resource: "topic", Name: "absent", Operation: "Write"},
	}
	want := []Grant{Granted, NotGranted, Undescribable, NoTopic}
	var got []ACLGrant
	// ACLs reach the broker through the metadata log: poll until they show.
	for deadline := time.Now().Add(30 * time.Second); ; {
		got = ProbeACLs(ctx, kadm.NewClient(cl), need)
		if grants(got) == grantNames(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // poll interval, with the deadline above
	}
	if grants(got) != grantNames(want) {
		for _, g := range got {
			t.Logf("%s: %s, err %v", g.ACL, grantNames([]Grant{g.Grant}), g.Err)
		}
		t.Fatalf("grants %s, want %s", grants(got), grantNames(want))
	}
	for i, n := range []string{"granted", "granted", "hidden", "absent"} {
		if got[i].Name != n || got[i].Resource != "topic" {
			t.Errorf("grant %d is for %s, want topic %s (need's order, topics only)", i, got[i].ACL, n)
		}
	}
	if !errors.Is(got[2].Err, kerr.TopicAuthorizationFailed) {
		t.Errorf("undescribable: err %v, want TOPIC_AUTHORIZATION_FAILED", got[2].Err)
	}
}

// grants names each grant's Grant.
func grants(gs []ACLGrant) string {
	out := make([]Grant, len(gs))
	for i, g := range gs {
		out[i] = g.Grant
	}
	return grantNames(out)
}

func grantNames(gs []Grant) string {
	names := map[Grant]string{GrantUnknown: "unknown", Granted: "granted", NotGranted: "not granted", Undescribable: "undescribable", NoTopic: "no topic"}
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = names[g]
	}
	return strings.Join(out, ", ")
}
