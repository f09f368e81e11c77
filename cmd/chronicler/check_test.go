package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// shopStack is the example shop on the test stack: Postgres with
// deploy/examples/shop/schema.sql, the KurrentDB-compatible server, Kafka
// (real unless CHRONICLER_TEST_KAFKA=kfake) and a copy of the shop rules
// whose topics carry a per-run suffix, so runs sharing a broker do not meet.
type shopStack struct {
	pg       *stack.Postgres
	store    *kurrentdb.Server
	kafka    *stack.Kafka
	rulesDir string
	suffix   string
	topics   []string // the rules' topics
	dlTopic  string
	cpTopic  string
}

func startShop(t *testing.T, withKafka bool, pgOpts ...stack.PostgresOption) *shopStack {
	t.Helper()
	s := &shopStack{suffix: fmt.Sprint(time.Now().UnixNano())}
	s.pg = stack.StartPostgres(t, pgOpts...)
	s.loadSchema(t)
	s.store = kurrentdbtest.Start(t, kurrentdb.Options{})
	if withKafka {
		s.kafka = stack.StartKafka(t)
	}
	s.writeRules(t)
	return s
}

// loadSchema creates the shop's tables (deploy/examples/shop/schema.sql).
func (s *shopStack) loadSchema(t *testing.T) {
	t.Helper()
	schema, err := os.ReadFile("../../deploy/examples/shop/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	s.pg.Exec(t, "postgres", string(schema))
}

// writeRules copies the shop rules with the per-run topics to s.rulesDir.
func (s *shopStack) writeRules(t *testing.T) {
	t.Helper()
	s.rulesDir = t.TempDir()
	s.topics = []string{"crm.customer-contact." + s.suffix, "shop.orders." + s.suffix}
	s.dlTopic, s.cpTopic = "chronicler.deadletter."+s.suffix, "chronicler.checkpoints."+s.suffix
	for _, name := range []string{"capture.yaml", "promote.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../deploy/examples/rules/shop", name))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("crm.customer-contact.v1"), []byte(s.topics[0]))
		b = bytes.ReplaceAll(b, []byte("shop.orders.v1"), []byte(s.topics[1]))
		if err := os.WriteFile(filepath.Join(s.rulesDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// createTopics creates topics with one partition.
func (s *shopStack) createTopics(t *testing.T, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(s.kafka.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range topics {
		resp, err := adm.CreateTopic(ctx, 1, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("creating topic %s: %v", topic, err)
		}
	}
}

// configFile writes a chronicler.yaml for the stack; edit changes the YAML
// text before it is written (e.g. to add a table or a password).
func (s *shopStack) configFile(t *testing.T, slot string, edit func(string) string) string {
	t.Helper()
	brokers := "[127.0.0.1:1]"
	if s.kafka != nil {
		brokers = "[" + strings.Join(s.kafka.Brokers, ", ") + "]"
	}
	y := fmt.Sprintf(`postgres:
  url: %s
  slot: %s
  publication: chronicler
  tables: [public.customers, public.orders, public.order_lines, public.payments]
  heartbeat_interval: 1h
store:
  url: %s
kafka:
  brokers: %s
rules:
  paths: [%s]
delivery:
  checkpoint_topic: %s
deadletter:
  topic: %s
http:
  addr: ""
`, s.pg.URL(), slot, s.store.URL(), brokers, s.rulesDir, s.cpTopic, s.dlTopic)
	if edit != nil {
		y = edit(y)
	}
	path := filepath.Join(t.TempDir(), "chronicler.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkJSON runs `chronicler check --json` and decodes its report.
func checkJSON(t *testing.T, args ...string) (int, preflight.Report, string) {
	t.Helper()
	code, out, errOut := runCLI(append([]string{"check", "--json"}, args...)...)
	var rep preflight.Report
	if code == 0 || code == 1 {
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("check --json printed no report (exit %d): %v\nstdout: %s\nstderr: %s", code, err, out, errOut)
		}
	}
	return code, rep, out + errOut
}

// plaintextWarning: c is the warning about a plaintext connection that
// every check of the (plaintext) test stack gives.
func plaintextWarning(c preflight.Check) bool {
	return c.Status == preflight.Warn && (c.Name == "postgres tls" || strings.HasPrefix(c.Name, "store tls ") || strings.HasPrefix(c.Name, "kafka tls ")) &&
		strings.Contains(c.Found, "plaintext")
}

func findCheck(rep preflight.Report, name string) (preflight.Check, bool) {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return preflight.Check{}, false
}

// TestCheckPassesOnTheTestStack: against the shop on the test stack, with
// the rules' topics, the dead-letter and the checkpoint topics created,
// check exits 0 and every line is ok but the three connections' security:
// the test stack runs plaintext, and each connection is a warning naming
// it (postgres 127.0.0.1:port/postgres, kafka host:port, store host:port)
// with the fix; the lines name what they checked.
func TestCheckPassesOnTheTestStack(t *testing.T) {
	s := startShop(t, true)
	s.createTopics(t, append(s.topics, s.dlTopic, s.cpTopic)...)
	cfg := s.configFile(t, "check_pass", nil)

	code, out, errOut := runCLI("check", "--config", cfg)
	t.Logf("chronicler check:\n%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	code, rep, all := checkJSON(t, "--config", cfg)
	if code != 0 || !rep.OK {
		t.Fatalf("--json: exit %d, ok %v\n%s", code, rep.OK, all)
	}
	plaintext := map[string]string{ // check name -> what its finding must say
		"postgres tls":                fmt.Sprintf("127.0.0.1:%d/postgres: plaintext (sslmode=disable)", s.pg.Port),
		"store tls " + s.store.Addr(): "store " + s.store.Addr() + ": tls=false: plaintext",
	}
	for _, b := range s.kafka.Brokers {
		plaintext["kafka tls "+b] = "kafka " + b + ": plaintext"
	}
	for _, c := range rep.Checks {
		if want, ok := plaintext[c.Name]; ok {
			if c.Status != preflight.Warn || !strings.HasPrefix(c.Found, want) || c.Fix == "" {
				t.Errorf("%s: %s %q (fix: %q); want a warning starting %q, with a fix", c.Name, c.Status, c.Found, c.Fix, want)
			}
			delete(plaintext, c.Name)
			continue
		}
		if c.Status != preflight.OK {
			t.Errorf("%s: %s %s (fix: %s); want ok", c.Name, c.Status, c.Found, c.Fix)
		}
	}
	for name := range plaintext {
		t.Errorf("no check named %q: a plaintext connection is not reported", name)
	}
	// Every prerequisite of the brief is among the lines.
	want := []string{
		"postgres reachable", "postgres version", "postgres wal_level", "postgres max_replication_slots",
		"postgres max_wal_senders", "postgres role postgres", "postgres publication chronicler", "postgres slot check_pass",
		"store version", "store append limit", "kafka broker versions", "kafka transactions",
		"kafka topic " + s.topics[0], "kafka topic " + s.topics[1], "kafka topic " + s.dlTopic, "kafka topic " + s.cpTopic,
		"rules " + s.rulesDir,
	}
	for _, tbl := range []string{"customers", "orders", "order_lines", "payments"} {
		want = append(want, "postgres table public."+tbl, "postgres replica identity public."+tbl)
	}
	for _, name := range want {
		if _, ok := findCheck(rep, name); !ok {
			t.Errorf("no check named %q", name)
		}
	}
	if c, _ := findCheck(rep, "postgres wal_level"); c.Found != "logical" {
		t.Errorf("wal_level found %q, want logical", c.Found)
	}
	if c, _ := findCheck(rep, "postgres replica identity public.customers"); !strings.HasPrefix(c.Found, "FULL") {
		t.Errorf("customers replica identity found %q, want FULL (schema.sql sets it)", c.Found)
	}
	// Human output: one line per check plus the summary.
	if got := strings.Count(out, "\n"); got != len(rep.Checks)+1 {
		t.Errorf("human output has %d lines for %d checks (+1 summary)", got, len(rep.Checks))
	}
	if !strings.HasSuffix(out, fmt.Sprintf("%d ok, %d warn, 0 FAIL\n", len(rep.Checks)-2-len(s.kafka.Brokers), 2+len(s.kafka.Brokers))) {
		t.Errorf("summary line wrong:\n%s", out)
	}
}

// TestCheckFailsOnWalLevelReplica: a server with wal_level=replica fails
// the check; the line names wal_level, the value found and the fix.
func TestCheckFailsOnWalLevelReplica(t *testing.T) {
	s := startShop(t, false, stack.WithPostgresSetting("wal_level", "replica"))
	cfg := s.configFile(t, "check_wal", nil)
	code, out, errOut := runCLI("check", "--only", "capture", "--config", cfg)
	t.Logf("chronicler check:\n%s%s", out, errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "wal_level") {
			line = l
		}
	}
	for _, want := range []string{"FAIL", "postgres wal_level", "replica", "ALTER SYSTEM SET wal_level = logical; then restart Postgres"} {
		if !strings.Contains(line, want) {
			t.Errorf("wal_level line %q lacks %q", line, want)
		}
	}
	code, rep, _ := checkJSON(t, "--only", "capture", "--config", cfg)
	c, ok := findCheck(rep, "postgres wal_level")
	if code != 1 || rep.OK || !ok || c.Status != preflight.Fail || c.Found != "replica" || !strings.Contains(c.Fix, "wal_level = logical") {
		t.Fatalf("--json: exit %d ok %v check %+v", code, rep.OK, c)
	}
	for _, c := range rep.Checks {
		if c.Status == preflight.Fail && c.Name != "postgres wal_level" {
			t.Errorf("unexpected FAIL: %+v", c)
		}
	}
}

// TestCheckFailingChecksNameTheirThing: each broken prerequisite makes
// exactly the expected checks FAIL (or warn), each naming its table, topic
// or broker and carrying the fix.
func TestCheckFailingChecksNameTheirThing(t *testing.T) {
	s := startShop(t, true)
	s.createTopics(t, append(s.topics, s.dlTopic, s.cpTopic)...)
	s.pg.Exec(t, "postgres", `CREATE TABLE nokey (a int, b text);
CREATE PUBLICATION allpub FOR ALL TABLES;
CREATE PUBLICATION insonly FOR TABLE customers, orders, order_lines, payments WITH (publish = 'insert');
SELECT pg_create_physical_replication_slot('phys');
CREATE ROLE plain LOGIN;
CREATE TABLE t_part (id int, region text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE t_part_eu PARTITION OF t_part FOR VALUES IN ('eu');
CREATE TABLE gen (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED);`)
	// A slot with progress in the store, which Postgres does not have
	// (dropped under chronicler).
	db := kurrentdbtest.Client(t, s.store.URL())
	if _, err := db.AppendToStream(context.Background(), contract.ProgressStream("dropped"), esdb.AppendToStreamOptions{},
		esdb.EventData{EventType: contract.ProgressType, ContentType: esdb.ContentTypeJson,
			Data: contract.EncodeProgress(contract.Progress{Slot: "dropped", DurableLSN: 0x16B3748})}); err != nil {
		t.Fatal(err)
	}

	// Rules whose topic does not exist, and rules reading payments' old
	// values on update (payments has REPLICA IDENTITY DEFAULT).
	missingTopic := "missing." + s.suffix
	missingRules := t.TempDir()
	oldRules := t.TempDir()
	for _, name := range []string{"capture.yaml", "promote.yaml"} {
		b, err := os.ReadFile(filepath.Join(s.rulesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(oldRules, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(s.topics[0]), []byte(missingTopic))
		if err := os.WriteFile(filepath.Join(missingRules, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	oldRule := `capture:
  - name: payment-amount-corrected
    table: public.payments
    on: [update]
    when: old.amount_cents != new.amount_cents
    stream: {category: order, id: new.order_id}
    type: PaymentCorrected
    data: {paymentId: new.id, from: old.amount_cents, to: new.amount_cents}
`
	if err := os.WriteFile(filepath.Join(oldRules, "payments.yaml"), []byte(oldRule), 0o644); err != nil {
		t.Fatal(err)
	}
	tables := "tables: [public.customers, public.orders, public.order_lines, public.payments]"

	type want struct {
		status preflight.Status
		name   string
		found  string // substring of found
		fix    string // substring of fix
	}
	cases := []struct {
		name  string
		args  []string
		edit  func(string) string
		wants []want // exactly the non-ok checks
		oks   []want // some of the ok checks
	}{
		{
			name: "missing table",
			edit: func(y string) string {
				return strings.Replace(y, tables, "tables: [public.customers, public.orders, public.order_lines, public.payments, public.nope]", 1)
			},
			wants: []want{
				{preflight.Fail, "postgres table public.nope", "does not exist", "remove it from postgres.tables"},
				{preflight.Fail, "postgres publication chronicler", "lacks public.nope", `ALTER PUBLICATION "chronicler" ADD TABLE "public"."nope"`},
			},
		},
		{
			name: "table without replica identity",
			edit: func(y string) string {
				return strings.Replace(y, tables, "tables: [public.customers, public.orders, public.order_lines, public.payments, public.nokey]\n  add_missing_tables: true", 1)
			},
			wants: []want{
				{preflight.Fail, "postgres replica identity public.nokey", "no primary key", `ALTER TABLE "public"."nokey" REPLICA IDENTITY FULL;`},
				{preflight.Warn, "postgres publication chronicler", "lacks public.nokey", `ALTER PUBLICATION "chronicler" ADD TABLE "public"."nokey"`},
			},
		},
		{
			name: "old values without REPLICA IDENTITY FULL",
			edit: func(y string) string {
				y = strings.Replace(y, s.rulesDir, oldRules, 1)
				return strings.Replace(y, tables, tables+"\n  need_old_values: [public.order_lines]", 1)
			},
			wants: []want{
				{preflight.Warn, "postgres replica identity public.payments", `rule "payment-amount-corrected"`, `ALTER TABLE "public"."payments" REPLICA IDENTITY FULL;`},
				{preflight.Warn, "postgres replica identity public.order_lines", "need_old_values", `ALTER TABLE "public"."order_lines" REPLICA IDENTITY FULL;`},
			},
		},
		{
			name: "publication for all tables",
			edit: func(y string) string { return strings.Replace(y, "publication: chronicler", "publication: allpub", 1) },
			wants: []want{
				{preflight.Fail, "postgres publication allpub", "ALL TABLES", `DROP PUBLICATION "allpub";`},
			},
		},
		{
			name: "publication without every operation",
			edit: func(y string) string { return strings.Replace(y, "publication: chronicler", "publication: insonly", 1) },
			wants: []want{
				{preflight.Fail, "postgres publication insonly", "does not publish every operation", `ALTER PUBLICATION "insonly" SET (publish = 'insert, update, delete, truncate');`},
			},
		},
		{
			name: "partitioned table and generated column",
			edit: func(y string) string {
				return strings.Replace(y, tables, "tables: [public.customers, public.orders, public.order_lines, public.payments, public.t_part, public.gen]\n  add_missing_tables: true", 1)
			},
			wants: []want{
				{preflight.Warn, "postgres generated columns public.gen", "twice not captured", "compute them in the rules"},
				{preflight.Fail, "postgres publication chronicler", "does not publish partitioned public.t_part via the partition root",
					`ALTER PUBLICATION "chronicler" SET (publish_via_partition_root = true);`},
			},
			oks: []want{
				{preflight.OK, "postgres table public.t_part", "partitioned (1 partition: public.t_part_eu): its partitions' changes are captured under public.t_part", ""},
				{preflight.OK, "postgres replica identity public.t_part", "public.t_part_eu DEFAULT (primary key)", ""},
			},
		},
		{
			name: "slot dropped under chronicler",
			edit: func(y string) string { return strings.Replace(y, "slot: check_fail_", "slot: dropped\n  # ", 1) },
			wants: []want{
				{preflight.Fail, "postgres slot dropped history", "the store holds its progress up to 0/16B3748", "postgres.on_missing_slot: resnapshot"},
			},
			oks: []want{{preflight.OK, "postgres slot dropped", "absent", ""}},
		},
		{
			name: "slot dropped, resnapshot allowed",
			edit: func(y string) string {
				return strings.Replace(y, "slot: check_fail_", "on_missing_slot: resnapshot\n  slot: dropped\n  # ", 1)
			},
			wants: []want{
				{preflight.Warn, "postgres slot dropped history", "creates it again and takes a new snapshot", "remove postgres.on_missing_slot"},
			},
		},
		{
			name: "physical slot",
			edit: func(y string) string { return strings.Replace(y, "slot: check_fail_", "slot: phys\n  # ", 1) },
			wants: []want{
				{preflight.Fail, "postgres slot phys", "physical slot", "pg_drop_replication_slot('phys')"},
			},
		},
		{
			name: "role without REPLICATION or SELECT",
			args: []string{"--only", "capture"},
			edit: func(y string) string {
				return strings.Replace(y, s.pg.URL(), strings.Replace(s.pg.URL(), "postgres@", "plain@", 1), 1)
			},
			wants: []want{
				{preflight.Fail, "postgres role plain", "neither REPLICATION nor superuser", `ALTER ROLE "plain" REPLICATION;`},
				{preflight.Fail, "postgres table public.customers", "may not SELECT", `GRANT SELECT ON "public"."customers" TO "plain";`},
				{preflight.Fail, "postgres table public.orders", "may not SELECT", `GRANT SELECT ON "public"."orders" TO "plain";`},
				{preflight.Fail, "postgres table public.order_lines", "may not SELECT", `GRANT SELECT ON "public"."order_lines" TO "plain";`},
				{preflight.Fail, "postgres table public.payments", "may not SELECT", `GRANT SELECT ON "public"."payments" TO "plain";`},
			},
		},
		{
			name: "missing topic",
			edit: func(y string) string { return strings.Replace(y, s.rulesDir, missingRules, 1) },
			wants: []want{
				{preflight.Fail, "kafka topic " + missingTopic, "missing", "create it, or set kafka.create_topics: true"},
			},
		},
		{
			name: "missing topic with create_topics",
			edit: func(y string) string {
				y = strings.Replace(y, s.rulesDir, missingRules, 1)
				return strings.Replace(y, "kafka:\n", "kafka:\n  create_topics: true\n", 1)
			},
		},
		{
			name: "unreachable broker",
			args: []string{"--timeout", "3s"},
			edit: func(y string) string {
				return strings.Replace(y, "brokers: ["+strings.Join(s.kafka.Brokers, ", ")+"]", "brokers: [127.0.0.1:1]", 1)
			},
			wants: []want{
				{preflight.Fail, "kafka brokers 127.0.0.1:1", "unreachable", "check kafka.brokers"},
			},
		},
		{
			name: "broken rule",
			edit: func(y string) string {
				dir := t.TempDir()
				bad := "capture:\n  - name: bad\n    table: public.customers\n    on: [insert]\n    stream: {category: customer, id: new.idd}\n    type: X\n    data: new\n"
				if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
					t.Fatal(err)
				}
				return strings.Replace(y, s.rulesDir, dir, 1)
			},
			wants: []want{
				{preflight.Fail, "rules ", `unknown column "idd"`, "did you mean new.id"},
				{preflight.Warn, "kafka topics of the rules", "not checked", "fix the rules"},
			},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := s.configFile(t, fmt.Sprintf("check_fail_%d", i), tc.edit)
			code, rep, all := checkJSON(t, append([]string{"--config", cfg}, tc.args...)...)
			var notOK []preflight.Check
			fails := false
			for _, c := range rep.Checks {
				// The test stack is plaintext: every run warns about its
				// connections (TestCheckPassesOnTheTestStack asserts those).
				if c.Status != preflight.OK && !plaintextWarning(c) {
					notOK = append(notOK, c)
				}
				fails = fails || c.Status == preflight.Fail
			}
			if wantCode := map[bool]int{true: 1, false: 0}[fails]; code != wantCode || rep.OK == fails {
				t.Errorf("exit %d, ok %v with FAILs %v", code, rep.OK, fails)
			}
			if len(notOK) != len(tc.wants) {
				t.Errorf("%d checks not ok, want %d:\n%s", len(notOK), len(tc.wants), all)
			}
			for _, w := range tc.wants {
				found := false
				for _, c := range notOK {
					if strings.HasPrefix(c.Name, w.name) && c.Status == w.status && strings.Contains(c.Found, w.found) && strings.Contains(c.Fix, w.fix) {
						found = true
					}
				}
				if !found {
					t.Errorf("no %s check %q found~%q fix~%q in:\n%s", w.status, w.name, w.found, w.fix, all)
				}
			}
			for _, w := range tc.oks {
				if c, ok := findCheck(rep, w.name); !ok || c.Status != preflight.OK || !strings.Contains(c.Found, w.found) {
					t.Errorf("check %q = %+v; want ok, found~%q", w.name, c, w.found)
				}
			}
		})
	}
}

// TestCheckNeverPrintsSecrets: passwords and tokens given in the config
// file, in a secret file, in URLs and in the environment appear nowhere in
// check's (nor status's) output (human or JSON, stdout or stderr), whether the systems are
// reachable or not.
func TestCheckNeverPrintsSecrets(t *testing.T) {
	s := startShop(t, false)
	secrets := map[string]string{
		"pg":    "pg-Secret-7f3a9",
		"pgurl": "pgurl-Secret-2b8c1",
		"store": "store-Secret-91d0e",
		"sasl":  "sasl-Secret-c47e2",
		"file":  "file-Secret-5a6b3",
	}
	pwFile := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pwFile, []byte(secrets["file"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHRONICLER_KAFKA_SASL_PASSWORD", secrets["sasl"])
	t.Setenv("CHRONICLER_KAFKA_SASL_MECHANISM", "PLAIN")
	t.Setenv("CHRONICLER_KAFKA_SASL_USERNAME", "chronicler")

	storeWithPw := strings.Replace(s.store.URL(), "esdb://", "esdb://admin:"+secrets["store"]+"@", 1)
	variants := map[string]func(string) string{
		// Reachable Postgres (trust auth ignores the password) with the
		// password in the file; the store URL carries credentials.
		"reachable": func(y string) string {
			y = strings.Replace(y, "  slot:", "  password: "+secrets["pg"]+"\n  slot:", 1)
			return strings.Replace(y, s.store.URL(), storeWithPw, 1)
		},
		// Postgres unreachable with the password in the URL; the store
		// unreachable with credentials.
		"unreachable": func(y string) string {
			y = strings.Replace(y, s.pg.URL(), "postgres://chronicler:"+secrets["pgurl"]+"@127.0.0.1:1/app?sslmode=disable&connect_timeout=2", 1)
			return strings.Replace(y, s.store.URL(), "esdb://admin:"+secrets["store"]+"@127.0.0.1:1?tls=false", 1)
		},
		// The password from a file, URL without one.
		"password_file": func(y string) string {
			y = strings.Replace(y, s.pg.URL(), "postgres://chronicler@127.0.0.1:1/app?sslmode=disable&connect_timeout=2", 1)
			return strings.Replace(y, "  slot:", "  password_file: "+pwFile+"\n  slot:", 1)
		},
	}
	for name, edit := range variants {
		t.Run(name, func(t *testing.T) {
			cfg := s.configFile(t, "check_secrets", edit)
			for _, args := range [][]string{{"check"}, {"check", "--json"}, {"check", "--only", "capture"}, {"status"}, {"status", "--json"}} {
				code, out, errOut := runCLI(append(args, "--config", cfg, "--timeout", "3s")...)
				if code != 0 && code != 1 {
					t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
				}
				for what, secret := range secrets {
					if strings.Contains(out+errOut, secret) {
						t.Errorf("%v printed the %s secret:\n%s%s", args, what, out, errOut)
					}
				}
				if name == "unreachable" && args[0] == "check" && !strings.Contains(out, "127.0.0.1:1/app") {
					t.Errorf("%v: the unreachable Postgres is not named by host:port/db:\n%s", args, out)
				}
			}
		})
	}
}
