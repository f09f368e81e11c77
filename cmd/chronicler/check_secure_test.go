package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// secureShop is the shop with the three servers in secure mode, and
// Chronicler's users given exactly the documented permissions (README,
// "Security"): on Postgres a role with LOGIN REPLICATION and SELECT on the
// captured tables, the publication made by the tables' owner; on Kafka a
// SCRAM-SHA-512 user with the ACLs of kafka.RequiredACLs; on the store a
// user with read of $all granted in $all's metadata (user streams are
// writable by every authenticated user by default).
type secureShop struct {
	*shopStack
	certs   *stack.Certs
	storeDB *esdb.Client // as admin
	slot    string
}

const (
	securePGUser, securePGPassword       = "chronicler", "pg-s3cret"
	secureKafkaUser, secureKafkaPassword = "chronicler", "kafka-s3cret"
	secureStoreUser, secureStorePassword = "chronicler", "store-s3cret"
)

func startSecureShop(t *testing.T, slot string) *secureShop {
	t.Helper()
	certs := stack.NewCerts(t, "")
	s := &secureShop{shopStack: &shopStack{suffix: fmt.Sprint(time.Now().UnixNano())}, certs: certs, slot: slot}
	s.pg = stack.StartPostgres(t, stack.WithPostgresTLS(stack.PostgresTLS{Certs: certs}))
	s.loadSchema(t) // it creates the publication, as the tables' owner
	s.pg.CreateLeastPrivilegeRole(t, "postgres", securePGUser, securePGPassword, shopTables...)

	s.store = kurrentdbtest.Start(t, kurrentdb.Options{
		TLS:   &kurrentdb.TLSOptions{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CAFile},
		Users: append(kurrentdb.DefaultUsers(), kurrentdb.User{Name: secureStoreUser, Password: secureStorePassword}),
	})
	s.storeDB = kurrentdbtest.Client(t, s.store.URLAs("admin", "changeit"))
	s.grantReadAll(t)

	s.kafka = stack.StartSecureKafka(t, stack.KafkaSecurity{Certs: certs})
	s.writeRules(t)
	s.createTopics(t, append(s.topics, s.dlTopic, s.cpTopic)...)
	s.kafka.SetSCRAM(t, secureKafkaUser, secureKafkaPassword)
	for _, a := range s.requiredACLs() {
		s.kafkaACL(t, a, true)
	}
	return s
}

var shopTables = []string{"public.customers", "public.orders", "public.order_lines", "public.payments"}

// requiredACLs are the Kafka ACLs the documentation lists for the shop.
func (s *secureShop) requiredACLs() []kafka.ACL {
	return kafka.RequiredACLs(s.topics, s.dlTopic, s.cpTopic, s.slot, true, false)
}

// kafkaACL creates (or deletes) a for Chronicler's user, as the admin.
func (s *secureShop) kafkaACL(t *testing.T, a kafka.ACL, grant bool) {
	t.Helper()
	s.kafka.SetACL(t, "User:"+secureKafkaUser, a.Resource, a.Name, a.Prefixed, a.Operation, grant)
}

// grantReadAll gives the store user read of $all in $all's metadata.
func (s *secureShop) grantReadAll(t *testing.T) {
	t.Helper()
	var acl esdb.Acl
	acl.AddReadRoles("$admins", secureStoreUser)
	s.setStoreACL(t, "$all", &acl)
}

// setStoreACL writes stream's metadata with acl (nil: no ACL, the
// defaults apply), as the admin.
func (s *secureShop) setStoreACL(t *testing.T, stream string, acl *esdb.Acl) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if acl == nil {
		_, err = s.storeDB.AppendToStream(ctx, "$$"+stream, esdb.AppendToStreamOptions{},
			esdb.EventData{EventID: uuid.New(), EventType: "$metadata", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)})
	} else {
		var m esdb.StreamMetadata
		m.SetAcl(*acl)
		_, err = s.storeDB.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{}, m)
	}
	if err != nil {
		t.Fatalf("setting the ACL of %s: %v", stream, err)
	}
}

// config is chronicler.yaml connecting as Chronicler's users, verifying
// each server against the test CA.
func (s *secureShop) config(t *testing.T, edit func(string) string) string {
	t.Helper()
	return s.configFile(t, s.slot, func(y string) string {
		y = strings.Replace(y, "  url: "+s.pg.URL()+"\n", fmt.Sprintf("  url: %s\n  password: %s\n", s.pg.RoleURL(securePGUser, "postgres"), securePGPassword), 1)
		y = strings.Replace(y, "  url: "+s.store.URL()+"\n", fmt.Sprintf("  url: %s\n  username: %s\n  password: %s\n", s.store.URL(), secureStoreUser, secureStorePassword), 1)
		y = strings.Replace(y, "kafka:\n", fmt.Sprintf("kafka:\n  tls: {enabled: true, ca_file: %s}\n  sasl: {mechanism: SCRAM-SHA-512, username: %s, password: %s}\n", s.certs.CAFile, secureKafkaUser, secureKafkaPassword), 1)
		if edit != nil {
			y = edit(y)
		}
		return y
	})
}

// notOK are rep's checks that are not ok.
func notOK(rep preflight.Report) []preflight.Check {
	var out []preflight.Check
	for _, c := range rep.Checks {
		if c.Status != preflight.OK {
			out = append(out, c)
		}
	}
	return out
}

// checkUntil runs check until done holds for its report (ACLs reach a
// Kafka broker through the metadata log), and fails the test after a
// minute.
func checkUntil(t *testing.T, cfg, what string, done func(preflight.Report) bool) preflight.Report {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, rep, all := checkJSON(t, "--config", cfg)
		if done(rep) {
			return rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached after a minute; last report:\n%s", what, all)
		}
		time.Sleep(500 * time.Millisecond) // poll interval, with the deadline above
	}
}

// TestCheckLeastPrivilege: against the three servers in secure mode, with
// exactly the documented permissions, check passes with every line ok (the
// connections verified, each permission found); then each documented
// permission, revoked alone, makes check FAIL on a line naming it, with the
// grant that fixes it, and nothing else fails; the permission is given back
// before the next.
func TestCheckLeastPrivilege(t *testing.T) {
	s := startSecureShop(t, "check_least")
	cfg := s.config(t, nil)
	allOK := func(rep preflight.Report) bool { return rep.OK && len(notOK(rep)) == 0 }
	rep := checkUntil(t, cfg, "every check ok with the documented permissions", allOK)
	for _, name := range []string{"postgres tls", "store tls " + s.store.Addr(), "kafka tls " + s.kafka.Brokers[0], "kafka acls", "store acls", "kafka transactions", "postgres role " + securePGUser} {
		c, ok := findCheck(rep, name)
		if !ok || c.Status != preflight.OK {
			t.Errorf("%s: %+v (found %v); want ok", name, c, ok)
		}
	}
	if c, _ := findCheck(rep, "postgres tls"); !strings.Contains(c.Found, "certificate verified (sslmode=verify-full)") {
		t.Errorf("postgres tls: %q; want verified by default", c.Found)
	}

	type revocation struct {
		name            string
		revoke, restore func(t *testing.T)
		check           string // the failing check's name
		found, fix      string // what it says
	}
	sql := func(q string) func(t *testing.T) { return func(t *testing.T) { s.pg.Exec(t, "postgres", q) } }
	var cases []revocation
	cases = append(cases,
		revocation{"postgres REPLICATION", sql("ALTER ROLE chronicler NOREPLICATION"), sql("ALTER ROLE chronicler REPLICATION"),
			"postgres role chronicler", "neither REPLICATION nor superuser", `ALTER ROLE "chronicler" REPLICATION;`},
		revocation{"postgres publication", sql("DROP PUBLICATION chronicler"),
			sql("CREATE PUBLICATION chronicler FOR TABLE public.customers, public.orders, public.order_lines, public.payments"),
			"postgres publication chronicler", "", "CREATE PUBLICATION"},
	)
	for _, tbl := range shopTables {
		cases = append(cases, revocation{"postgres SELECT on " + tbl, sql("REVOKE SELECT ON " + tbl + " FROM chronicler"), sql("GRANT SELECT ON " + tbl + " TO chronicler"),
			"postgres table " + tbl, "", fmt.Sprintf(`GRANT SELECT ON "public".%q TO "chronicler";`, strings.TrimPrefix(tbl, "public."))})
	}
	for _, a := range s.requiredACLs() {
		a := a
		check := "kafka acl " + a.String()
		cases = append(cases, revocation{"kafka " + a.String(),
			func(t *testing.T) { s.kafkaACL(t, a, false) }, func(t *testing.T) { s.kafkaACL(t, a, true) },
			check, "User:" + secureKafkaUser, a.Command(s.kafka.Brokers[0], "User:"+secureKafkaUser)})
	}
	adminsOnly := func(set func(*esdb.Acl, ...string)) *esdb.Acl {
		var acl esdb.Acl
		set(&acl, "$admins")
		return &acl
	}
	progress, dl, snap := contract.ProgressStream(s.slot), contract.DeadLetterStream(s.slot), contract.SnapshotStreamPrefix+s.slot
	cases = append(cases,
		revocation{"store read of $all", func(t *testing.T) {
			var acl esdb.Acl
			acl.AddReadRoles("$admins")
			s.setStoreACL(t, "$all", &acl)
		}, s.grantReadAll, "store reachable " + s.store.Addr(), "reading $all", `"$r": ["$admins", "chronicler"]`},
	)
	for _, st := range []string{progress, dl, snap} {
		st := st
		cases = append(cases, revocation{"store $w on " + st,
			func(t *testing.T) { s.setStoreACL(t, st, adminsOnly((*esdb.Acl).AddWriteRoles)) },
			func(t *testing.T) { s.setStoreACL(t, st, nil) },
			"store acl $w " + st, "chronicler at " + s.store.Addr() + ": missing", `{"$acl": {"$w": ["chronicler"]}} to stream ` + st})
	}
	cases = append(cases, revocation{"store $mw on " + progress,
		func(t *testing.T) { s.setStoreACL(t, progress, adminsOnly((*esdb.Acl).AddMetaWriteRoles)) },
		func(t *testing.T) { s.setStoreACL(t, progress, nil) },
		"store acl $mw " + progress, "missing: capture sets $maxCount", `{"$acl": {"$mw": ["chronicler"]}}`})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.revoke(t)
			rep := checkUntil(t, cfg, "check failing on "+tc.check, func(rep preflight.Report) bool {
				c, ok := findCheck(rep, tc.check)
				return ok && c.Status == preflight.Fail
			})
			c, _ := findCheck(rep, tc.check)
			t.Logf("%s: %s: %s (fix: %s)", c.Status, c.Name, c.Found, c.Fix)
			if rep.OK || !strings.Contains(c.Found, tc.found) || !strings.Contains(c.Fix, tc.fix) {
				t.Errorf("%s: %q (fix %q); want FAIL saying %q with the fix %q", tc.check, c.Found, c.Fix, tc.found, tc.fix)
			}
			for _, o := range notOK(rep) {
				if o.Name != tc.check && o.Status == preflight.Fail && !secondary(tc.check, o) {
					t.Errorf("also failing: %s: %s (fix: %s)", o.Name, o.Found, o.Fix)
				}
			}
			tc.restore(t)
			checkUntil(t, cfg, "every check ok again after restoring "+tc.name, allOK)
		})
	}
}

// secondary: o is a failure that follows from the one revoked: without
// DESCRIBE on a topic (no ACL left on it) the topics cannot be listed
// either.
func secondary(revoked string, o preflight.Check) bool {
	return strings.HasPrefix(revoked, "kafka acl ") && o.Name == "kafka topics"
}

// TestRunRefusesAStoreCertificateForAnotherHost: `run` against a store
// whose certificate names another host exits 1 at once with an error naming
// the server and tlsCAFile (the official client alone would retry it
// silently), and `check` FAILs its store tls line.
func TestRunRefusesAStoreCertificateForAnotherHost(t *testing.T) {
	s := startShop(t, false)
	certs := stack.NewCerts(t, "")
	wrong := kurrentdbtest.Start(t, kurrentdb.Options{TLS: &kurrentdb.TLSOptions{CertFile: certs.WrongHostCert, KeyFile: certs.WrongHostKey, CAFile: certs.CAFile}})
	cfg := s.configFile(t, "wrong_store", func(y string) string {
		return strings.Replace(y, "  url: "+s.store.URL()+"\n", "  url: "+wrong.URL()+"\n", 1)
	})
	start := time.Now()
	code, out, errOut := runCLI("run", "--config", cfg, "--only", "capture")
	if code != 1 || !strings.Contains(errOut, "TLS with the store at "+wrong.Addr()) || !strings.Contains(errOut, "tlsCAFile") {
		t.Errorf("run: exit %d after %s, want 1 naming the store's certificate:\n%s%s", code, time.Since(start).Round(time.Millisecond), out, errOut)
	}
	_, rep, all := checkJSON(t, "--config", cfg, "--only", "capture")
	if c, ok := findCheck(rep, "store tls "+wrong.Addr()); !ok || c.Status != preflight.Fail || !strings.Contains(c.Found, "does not verify") {
		t.Errorf("check: store tls %+v (found %v), want FAIL:\n%s", c, ok, all)
	}
}
