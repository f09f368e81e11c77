package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestSecurePipeline: the full pipeline (capture -> store -> Kafka, exactly
// once) with the three servers in secure mode and Chronicler's users given
// exactly the documented permissions (README, "Security"): Postgres with
// ssl = on and hostssl scram-sha-256 only, a role with LOGIN REPLICATION and
// SELECT on the two tables, the publication made by their owner, the URL
// without sslmode (verify-full by default); the store with TLS and users,
// Chronicler's user with read of $all granted in $all's metadata and the
// default ACL of user streams; Kafka on SASL_SSL (SCRAM-SHA-512) with
// ACLs enforced and the ACLs of kafka.RequiredACLs, topics made by the
// admin. Passwords come from files. The run must pass the chaos tests'
// verification (verify, checkKafka: every change once, in order, each
// integration event exactly once for read_committed).
func TestSecurePipeline(t *testing.T) {
	certs := stack.NewCerts(t, "")
	e := &env{t: t, dir: t.TempDir()}
	e.pg = stack.StartPostgres(t, stack.WithPostgresSetting("synchronous_commit", "off"), stack.WithPostgresTLS(stack.PostgresTLS{Certs: certs}))
	e.dbURL = e.pg.CreateDatabase(t, "app")
	e.pg.Exec(t, "app", schema+"CREATE PUBLICATION chaos FOR TABLE accounts, history;")
	e.pg.CreateLeastPrivilegeRole(t, "app", "chronicler", "pg-s3cret", "public.accounts", "public.history")

	e.store = startStore(t, filepath.Join(e.dir, "store-data"), "-tls-cert", certs.ServerCert, "-tls-key", certs.ServerKey, "-tls-ca", certs.CAFile,
		"-user", "admin:changeit:$admins", "-user", "chronicler:store-s3cret")
	admin := kurrentdbtest.Client(t, withUser(e.store.url, "admin", "changeit"))
	var acl esdb.Acl
	acl.AddReadRoles("$admins", "chronicler")
	var meta esdb.StreamMetadata
	meta.SetAcl(acl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.SetStreamMetadata(ctx, "$all", esdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatalf("granting chronicler read of $all: %v", err)
	}

	k := stack.StartSecureKafka(t, stack.KafkaSecurity{Certs: certs})
	n := fmt.Sprintf("secure-%d", time.Now().UnixNano())
	balances, moves, dead, cp := "balances-"+n, "moves-"+n, "dead-"+n, "cp-"+n
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := k.Admin(t)
	for _, topic := range []string{balances, moves, dead} {
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatalf("creating %s: %v", topic, err)
		}
	}
	compact := "compact"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact}, cp); err != nil {
		t.Fatalf("creating %s: %v", cp, err)
	}
	k.SetSCRAM(t, "chronicler", "kafka-s3cret")
	for _, a := range kafka.RequiredACLs([]string{balances, moves}, dead, cp, n, true, false) {
		k.SetACL(t, "User:chronicler", a.Resource, a.Name, a.Prefixed, a.Operation, true)
	}

	secret := func(name, value string) string {
		p := filepath.Join(e.dir, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.WriteFile(filepath.Join(e.dir, "rules.yaml"), []byte(rules+strings.NewReplacer("{{balances}}", balances, "{{moves}}", moves).Replace(haPromote)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(e.dir, "secure.yaml")
	src := fmt.Sprintf(`postgres:
  url: %s
  password_file: %s
  slot: %s
  publication: chaos
  tables: [public.accounts, public.history]
  heartbeat_interval: 1s
  status_interval: 250ms
store:
  url: %s
  username: chronicler
  password_file: %s
kafka:
  brokers: [%s]
  tls:
    enabled: true
    ca_file: %s
  sasl:
    mechanism: SCRAM-SHA-512
    username: chronicler
    password_file: %s
rules:
  paths: [rules.yaml]
delivery:
  publisher_id: %s
  checkpoint_topic: %s
  batch_interval: 50ms
deadletter:
  topic: %s
shutdown:
  grace: 5s
`, e.pg.RoleURL("chronicler", "app"), secret("pg-password", "pg-s3cret"), slot, e.store.url, secret("store-password", "store-s3cret"),
		strings.Join(k.Brokers, ", "), certs.CAFile, secret("kafka-password", "kafka-s3cret"), n, cp, dead)
	if strings.Contains(e.pg.RoleURL("chronicler", "app"), "sslmode") {
		t.Fatalf("the role URL names an sslmode (%s): the test must use the default", e.pg.RoleURL("chronicler", "app"))
	}
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCheck(t, cfg)
	if code != 0 || !strings.Contains(out, " ok, 0 warn, 0 FAIL") {
		t.Fatalf("chronicler check: exit %d, want 0 without warnings:\n%s%s", code, out, errOut)
	}
	in := e.newInstance("secure")
	e.startInstance(in, cfg)
	e.waitRole(in, "active", 60*time.Second)
	if err := e.workload(context.Background(), 1000, 2); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(90 * time.Second)
	e.verify(admin)
	checkKafka(t, e, k, balances, moves)
	in.stop(t)
}

// withUser is an esdb URL with user's credentials.
func withUser(u, user, password string) string {
	rest, _ := strings.CutPrefix(u, "esdb://")
	return "esdb://" + url.UserPassword(user, password).String() + "@" + rest
}

// runCheck runs `chronicler check --config cfg` and returns its exit code
// and output.
func runCheck(t *testing.T, cfg string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	cmd := exec.Command(bins.chronicler, "check", "--config", cfg)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("running chronicler check: %v", err)
	return 0, "", ""
}
