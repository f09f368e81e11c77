package stack

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestSecureKafka: a secure broker serves SASL_SSL only, enforces ACLs
// (a user with no ACL may not even describe a topic; WRITE lets it
// produce), refuses a wrong password, and its wrong-host listener's
// certificate is refused by a client that verifies the host.
func TestSecureKafka(t *testing.T) {
	certs := NewCerts(t, "")
	k := StartSecureKafka(t, KafkaSecurity{Certs: certs})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := k.Admin(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "acl-test"); err != nil {
		t.Fatalf("admin creating a topic: %v", err)
	}
	k.SetSCRAM(t, "alice", "alice-pw")
	alice := func(pw string) *kgo.Client {
		return k.clientAs(t, "alice", pw, certs)
	}
	produce := func(cl *kgo.Client) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: "acl-test", Value: []byte("x")}).FirstErr()
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	err := alice("alice-pw").ProduceSync(pctx, &kgo.Record{Topic: "acl-test", Value: []byte("x")}).FirstErr()
	pcancel()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("alice without ACLs: produce err %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if _, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("acl-test").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = produce(alice("alice-pw"))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // ACLs reach the broker through the metadata log; poll with a deadline
	}
	if err != nil {
		t.Errorf("alice with WRITE: %v", err)
	}
	plain, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	lctx, lcancel := context.WithTimeout(ctx, 10*time.Second)
	err = plain.Ping(lctx)
	lcancel()
	if err == nil {
		t.Error("a plaintext client without SASL was answered: the broker serves more than SASL_SSL")
	} else {
		t.Logf("plaintext client: %v", err)
	}
	bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
	err = alice("wrong").Ping(bctx)
	bcancel()
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	wrong, err := kgo.NewClient(kgo.SeedBrokers(k.Broker.WrongHostAddr()), kgo.DialTLSConfig(certs.ClientTLS()))
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = wrong.Ping(wctx)
	wcancel()
	if err == nil {
		t.Error("a client verifying the host accepted the wrong-host certificate")
	} else {
		t.Logf("wrong-host listener: %v", err)
	}
	// The control: the same listener, verified for the name its
	// certificate carries, answers, so the refusal above is the host
	// name's, not the CA's or a listener that does not answer.
	named := certs.ClientTLS()
	named.ServerName = "wrong.invalid"
	right, err := kgo.NewClient(kgo.SeedBrokers(k.Broker.WrongHostAddr()), kgo.DialTLSConfig(named))
	if err != nil {
		t.Fatal(err)
	}
	defer right.Close()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	err = right.Ping(rctx)
	rcancel()
	if err != nil {
		t.Errorf("the wrong-host listener verified as wrong.invalid: %v; want an answer", err)
	}
}

func (k *Kafka) clientAs(t *testing.T, user, pw string, certs *Certs) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.DialTLSConfig(certs.ClientTLS()),
		kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha512Mechanism()), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
