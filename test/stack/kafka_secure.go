package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// KafkaAdmin is the super-user of a secure broker: the test's admin, never
// the principal a test gives Chronicler.
const KafkaAdmin = "admin"

// KafkaSecurity makes a dedicated broker secure, as production clusters
// run: one SASL_SSL listener for clients (SCRAM-SHA-512 over TLS with a
// certificate of the test CA), ACLs enforced by KRaft's StandardAuthorizer
// with allow.everyone.if.no.acl.found=false, and one super-user,
// KafkaAdmin, whose SCRAM credentials are written at format time
// (kafka-storage format --add-scram). Other users are created by the test
// (Kafka.SetSCRAM) and get only the ACLs it creates (Kafka.Admin).
//
// The broker talks to itself (transaction markers) on the SASL_SSL listener
// as KafkaAdmin, and to its controller on a SASL_SSL listener with PLAIN
// credentials of KafkaAdmin from the JAAS configuration (SCRAM cannot
// authenticate the controller listener: its credentials live in the
// metadata the controller serves). A third listener, SSL only, presents a
// certificate made for another host name (Broker.WrongHostAddr): a client
// that verifies the host must refuse it.
type KafkaSecurity struct {
	// Certs are the certificates (NewCerts). Required.
	Certs *Certs
}

// brokerSecurity is a secure broker's files and admin password.
type brokerSecurity struct {
	certs         *Certs
	adminPassword string
	keystore      string // PEM: key + certificate (127.0.0.1)
	wrongKeystore string // PEM: key + certificate (wrong.invalid)
	truststore    string // the CA
	wrongHostAddr string
}

func (b *Broker) prepareSecure(sec KafkaSecurity) (*brokerSecurity, error) {
	if sec.Certs == nil {
		return nil, fmt.Errorf("stack: KafkaSecurity.Certs is required (stack.NewCerts)")
	}
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	s := &brokerSecurity{certs: sec.Certs, adminPassword: hex.EncodeToString(pw)}
	var err error
	if s.keystore, err = pemKeystore(b, "keystore.pem", sec.Certs.ServerKey, sec.Certs.ServerCert); err != nil {
		return nil, err
	}
	if s.wrongKeystore, err = pemKeystore(b, "wronghost-keystore.pem", sec.Certs.WrongHostKey, sec.Certs.WrongHostCert); err != nil {
		return nil, err
	}
	if s.truststore, err = copyFileFor(b.who, sec.Certs.CAFile, b.root, 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// pemKeystore writes Kafka's PEM key store: the PKCS#8 key, then the
// certificate, in one file owned by the broker's user.
func pemKeystore(b *Broker, name, key, cert string) (string, error) {
	k, err := os.ReadFile(key)
	if err != nil {
		return "", err
	}
	c, err := os.ReadFile(cert)
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.root, name)
	if err := os.WriteFile(path, append(k, c...), 0o600); err != nil {
		return "", err
	}
	if b.who != nil {
		if err := os.Chown(path, int(b.who.uid), int(b.who.gid)); err != nil {
			return "", err
		}
	}
	return path, nil
}

// configure replaces the plaintext listeners of lines with the secure ones
// and returns the properties and the extra arguments of the storage format.
func (s *brokerSecurity) configure(b *Broker, lines []string, ctrl int) (props, format []string, err error) {
	wrong, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	s.wrongHostAddr = fmt.Sprintf("127.0.0.1:%d", wrong)
	for _, l := range lines {
		switch k, _, _ := strings.Cut(l, "="); k {
		case "listeners", "advertised.listeners", "listener.security.protocol.map", "inter.broker.listener.name":
			continue
		}
		props = append(props, l)
	}
	scramLogin := fmt.Sprintf(`org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";`, KafkaAdmin, s.adminPassword)
	plainLogin := fmt.Sprintf(`org.apache.kafka.common.security.plain.PlainLoginModule required username="%s" password="%s" user_%s="%s";`,
		KafkaAdmin, s.adminPassword, KafkaAdmin, s.adminPassword)
	props = append(props,
		fmt.Sprintf("listeners=SASL_SSL://%s,CONTROLLER://127.0.0.1:%d,WRONGHOST://%s", b.Addr, ctrl, s.wrongHostAddr),
		fmt.Sprintf("advertised.listeners=SASL_SSL://%s,WRONGHOST://%s", b.Addr, s.wrongHostAddr),
		"listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL,WRONGHOST:SSL",
		"inter.broker.listener.name=SASL_SSL",
		"sasl.enabled.mechanisms=SCRAM-SHA-512",
		"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
		"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="+scramLogin,
		"sasl.mechanism.controller.protocol=PLAIN",
		"listener.name.controller.sasl.enabled.mechanisms=PLAIN",
		"listener.name.controller.plain.sasl.jaas.config="+plainLogin,
		"ssl.keystore.type=PEM",
		"ssl.keystore.location="+s.keystore,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location="+s.truststore,
		"listener.name.wronghost.ssl.keystore.type=PEM",
		"listener.name.wronghost.ssl.keystore.location="+s.wrongKeystore,
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"allow.everyone.if.no.acl.found=false",
		"super.users=User:"+KafkaAdmin,
	)
	format = []string{"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", KafkaAdmin, s.adminPassword)}
	return props, format, nil
}

// ClientOpts are the seed broker and, for a secure broker, TLS (trusting
// the test CA) and SASL as KafkaAdmin.
func (b *Broker) ClientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(b.Addr)}
	if b.sec != nil {
		opts = append(opts, b.sec.adminOpts()...)
	}
	return opts
}

func (s *brokerSecurity) adminOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.DialTLSConfig(s.certs.ClientTLS()),
		kgo.SASL(scram.Auth{User: KafkaAdmin, Pass: s.adminPassword}.AsSha512Mechanism()),
	}
}

// WrongHostAddr is the address of a secure broker's listener that presents
// the wrong-host certificate ("" for a plaintext broker).
func (b *Broker) WrongHostAddr() string {
	if b.sec == nil {
		return ""
	}
	return b.sec.wrongHostAddr
}

// StartSecureKafka starts a dedicated secure broker for the test (see
// KafkaSecurity) and registers its teardown. The Kafka's Client and Admin
// act as KafkaAdmin.
func StartSecureKafka(t testing.TB, sec KafkaSecurity) *Kafka {
	t.Helper()
	b, err := newBroker(t.Logf, &sec)
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return &Kafka{Brokers: []string{b.Addr}, Kind: "real", Broker: b, Opts: b.sec.adminOpts()}
}

// Admin is an admin client of the cluster (KafkaAdmin on a secure broker),
// closed by the test's cleanup.
func (k *Kafka) Admin(t testing.TB) *kadm.Client {
	t.Helper()
	return kadm.NewClient(k.Client(t))
}

// SetSCRAM creates or updates user's SCRAM-SHA-512 credentials (as the
// admin, AlterUserSCRAMs) and waits until the broker has them: a new
// client authenticates as user.
func (k *Kafka) SetSCRAM(t testing.TB, user, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := k.Admin(t).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: password}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("stack: setting SCRAM credentials of %s: %v", user, err)
	}
	// The credential reaches the broker through the metadata log: poll
	// until a client authenticates with it.
	for {
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.DialTLSConfig(k.Broker.sec.certs.ClientTLS()),
			kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()), kgo.RetryTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		err = cl.Ping(ctx)
		cl.Close()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("stack: %s cannot authenticate 30s after its SCRAM credentials were set: %v", user, err)
		}
		time.Sleep(100 * time.Millisecond) // poll interval, with the deadline above
	}
}

// SetACL grants (or with grant false, deletes) one allow ACL for principal
// ("User:name") from any host, as the admin: operation ("Read", "Write",
// "Create", "Describe") on resource ("topic", "transactional-id",
// "cluster") name, a literal or prefixed pattern. Deleting an ACL that does
// not exist fails the test. ACLs reach the broker through the metadata log:
// a client may see the change a moment later.
func (k *Kafka) SetACL(t testing.TB, principal, resource, name string, prefixed bool, operation string, grant bool) {
	t.Helper()
	b := kadm.NewACLs().Allow(principal).AllowHosts("*")
	switch resource {
	case "topic":
		b = b.Topics(name)
	case "transactional-id":
		b = b.TransactionalIDs(name)
	case "cluster":
		b = b.Clusters()
	default:
		t.Fatalf("stack: SetACL: unknown resource %q", resource)
	}
	ops := map[string]kadm.ACLOperation{"Read": kadm.OpRead, "Write": kadm.OpWrite, "Create": kadm.OpCreate, "Describe": kadm.OpDescribe}
	op, ok := ops[operation]
	if !ok {
		t.Fatalf("stack: SetACL: unknown operation %q", operation)
	}
	pattern := kadm.ACLPatternLiteral
	if prefixed {
		pattern = kadm.ACLPatternPrefixed
	}
	b = b.Operations(op).ResourcePatternType(pattern)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := k.Admin(t)
	var err error
	if grant {
		var res kadm.CreateACLsResults
		if res, err = adm.CreateACLs(ctx, b); err == nil {
			for _, r := range res {
				err = errors.Join(err, r.Err)
			}
		}
	} else {
		var res kadm.DeleteACLsResults
		if res, err = adm.DeleteACLs(ctx, b); err == nil {
			n := 0
			for _, r := range res {
				err = errors.Join(err, r.Err)
				n += len(r.Deleted)
			}
			if err == nil && n != 1 {
				err = fmt.Errorf("deleted %d ACLs, want 1", n)
			}
		}
	}
	if err != nil {
		t.Fatalf("stack: %s %s on %s %s for %s (grant %v): %v", operation, pattern, resource, name, principal, grant, err)
	}
}
