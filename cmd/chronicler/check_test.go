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

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
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
	schema, err := os.ReadFile("../../deploy/examples/shop/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	s.pg.Exec(t, "postgres", string(schema))
	s.store = kurrentdbtest.Start(t, kurrentdb.Options{})
	if withKafka {
		s.kafka = stack.StartKafka(t)
	}
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
	return s
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
// check exits 0 and every line is ok; the lines name what they checked.
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
	for _, c := range rep.Checks {
		if c.Status != preflight.OK {
			t.Errorf("%s: %s %s (fix: %s); want ok", c.Name, c.Status, c.Found, c.Fix)
		}
	}
	// Every prerequisite of the brief is among the lines.
	want := []string{
		"postgres reachable", "postgres version", "postgres wal_level", "postgres max_replication_slots",
		"postgres max_wal_senders", "postgres role postgres", "postgres publication chronicler", "postgres slot check_pass",
		"store version", "kafka broker versions", "kafka transactions",
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
	if !strings.HasSuffix(out, fmt.Sprintf("%d ok, 0 warn, 0 FAIL\n", len(rep.Checks))) {
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
