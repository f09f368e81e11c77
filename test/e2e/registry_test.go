package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// registryRules is a promotion rule with a closed schema; {{value}} and
// {{props}} add fields to v1's id, email and seq (or {{drop}} removes seq).
const registryRules = `
promote:
  - name: customer-changed
    from: [CustomerChanged]
    topic: {{topic}}
    type: crm.customer.changed.v1
    value: {id: event.data.id, email: event.data.email{{seq}}{{value}}}
    schema:
      title: CustomerChanged
      type: object
      additionalProperties: false
      properties:
        id: {type: integer}
        email: {type: string, format: email}{{seqProp}}{{props}}
      required: [id, email{{seqReq}}]
`

func registryRuleText(topic string, withSeq bool, value, props string) string {
	seq, seqProp, seqReq := ", seq: event.data.seq", "\n        seq: {type: integer}", ", seq"
	if !withSeq {
		seq, seqProp, seqReq = "", "", ""
	}
	return strings.NewReplacer("{{topic}}", topic, "{{seq}}", seq, "{{seqProp}}", seqProp, "{{seqReq}}", seqReq,
		"{{value}}", value, "{{props}}", props).Replace(registryRules)
}

// TestSchemaRegistryContract is the acceptance, through the
// binary (`chronicler run --only publish`, production's wiring), a real
// Kafka broker and a real Confluent-compatible registry:
//  1. the publisher registers the rule's schema (version 1) and a
//     read_committed consumer decodes every record with the schema id it
//     carries (franz-go's Serde); a value that violates the schema (an
//     email that is not one) lands in the dead-letter topic with the
//     reason;
//  2. a rule change that removes a required field (seq) is refused at
//     start: exit 1, the error naming the subject and the field, nothing
//     registered, nothing published;
//  3. a compatible change (a new optional field) registers version 2 and
//     publishing goes on where it stopped: every event exactly once, the
//     new records carrying version 2's id;
//  4. the incompatible change of 2 as a reload (SIGHUP) is refused while
//     the running rules stay: publishing goes on with version 2.
func TestSchemaRegistryContract(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	reg := stack.StartRegistry(t)
	k := stack.StartKafka(t)
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	store := &chaosStore{t: t, db: kurrentdbtest.Client(t, srv.URL()), want: map[string]expected{}}
	n := fmt.Sprintf("registry-%d", time.Now().UnixNano())
	topic := "customers-" + n
	subject := topic + "-value"
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	writeRules := func(text string) {
		if err := os.WriteFile(rules, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := publishConfig(t, srv.URL(), k.Brokers, rules, n, "exactly-once")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "kafka:\n", "kafka:\n  schema_registry: {url: \""+reg.URL+"\"}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "publisher.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	defer func() {
		if t.Failed() {
			t.Logf("publisher log tail:\n%s", tailFile(logPath, 40))
		}
	}()
	start := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(bins.chronicler, "run", "--only", "publish", "--config", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, done
	}
	appendCustomers := func(from, to int, bad map[int]bool) {
		for i := from; i < to; i++ {
			email := fmt.Sprintf("c%d@example.org", i)
			if bad[i] {
				email = "not an address"
			}
			if _, err := store.append(ctx, "s1", uint64(i+1), 0, fmt.Sprintf("customer-%d", i), "CustomerChanged", map[string]any{"id": i, "email": email, "seq": i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	srcl, err := sr.NewClient(sr.URLs(reg.URL))
	if err != nil {
		t.Fatal(err)
	}
	cl := k.Client(t, kgo.ConsumeTopics(topic, "dead-"+n), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var serde sr.Serde
	type value struct {
		ID    int
		Email string
		Seq   int
		Note  *string
	}
	seen := map[string]int{}  // ce_id → times
	ids := map[int]int{}      // schema id → records
	values := map[int]value{} // by customer id
	var dead []*kgo.Record
	// consume reads until the topic holds want records (and the dead-letter
	// topic wantDead), every value decoded with the id it carries.
	consume := func(want, wantDead int) {
		t.Helper()
		for len(values) < want || len(dead) < wantDead {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d records and %d dead letters; want %d and %d", len(values), len(dead), want, wantDead)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Topic != topic {
					dead = append(dead, r)
					return
				}
				id, _, err := serde.DecodeID(r.Value)
				if err != nil {
					t.Fatalf("record %d: no schema id: %v (%q)", r.Offset, err, r.Value)
				}
				if !serde.IsRegistered(id) {
					s, err := srcl.SchemaByID(ctx, id)
					if err != nil || !strings.Contains(s.Schema, `"title":"CustomerChanged"`) {
						t.Fatalf("record %d carries schema id %d, which the registry does not know as ours: %+v %v", r.Offset, id, s, err)
					}
					serde.Register(id, value{}, sr.DecodeFn(json.Unmarshal))
				}
				var v value
				if err := serde.Decode(r.Value, &v); err != nil {
					t.Fatalf("record %d: %v", r.Offset, err)
				}
				ids[id]++
				if _, dup := values[v.ID]; dup {
					t.Errorf("customer %d published twice", v.ID)
				}
				values[v.ID] = v
				for _, h := range r.Headers {
					if h.Key == kafka.HeaderID {
						seen[string(h.Value)]++
					}
				}
			})
		}
	}
	version := func(v int) sr.SubjectSchema {
		t.Helper()
		s, err := srcl.SchemaByVersion(ctx, subject, v)
		if err != nil {
			t.Fatalf("version %d of %s: %v", v, subject, err)
		}
		return s
	}

	// 1. v1: registered at start; 49 records and one dead letter.
	writeRules(registryRuleText(topic, true, "", ""))
	appendCustomers(0, 50, map[int]bool{17: true})
	cmd, done := start()
	consume(49, 1)
	v1 := version(1)
	if ids[v1.ID] != 49 || len(ids) != 1 {
		t.Errorf("schema ids of the records %v; want all 49 with version 1's id %d", ids, v1.ID)
	}
	for i := range 50 {
		v, ok := values[i]
		if i == 17 {
			if ok {
				t.Errorf("customer 17's invalid value was published: %+v", v)
			}
			continue
		}
		if !ok || v.Seq != i || v.Email != fmt.Sprintf("c%d@example.org", i) || v.Note != nil {
			t.Errorf("customer %d: %+v (published %v)", i, v, ok)
		}
	}
	h := map[string]string{}
	for _, x := range dead[0].Headers {
		h[x.Key] = string(x.Value)
	}
	if h[kafka.HeaderDLStream] != "customer-17" || h[kafka.HeaderDLRule] != "customer-changed" || !strings.Contains(h[kafka.HeaderDLError], "violates the rule's schema") ||
		!strings.Contains(h[kafka.HeaderDLError], "at /email") || !strings.Contains(string(dead[0].Value), `"error":`) {
		t.Errorf("dead letter %v: want customer-17's violation with the reason", h)
	}
	stopPublisher(t, cmd, done, 0)

	// 2. Removing a required field: refused at start.
	writeRules(registryRuleText(topic, false, "", ""))
	off, _ := logf.Seek(0, 1)
	cmd, done = start()
	stopPublisher(t, cmd, done, 1)
	out := tailFrom(t, logPath, off)
	for _, want := range []string{`subject "` + subject + `"`, `field "seq" removed`, `rule "customer-changed"`, "incompatible with version 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if vs, err := srcl.SubjectVersions(ctx, subject); err != nil || len(vs) != 1 {
		t.Errorf("versions %v %v after the refusal; want only 1", vs, err)
	}

	// 3. A new optional field: version 2, and publishing goes on.
	writeRules(registryRuleText(topic, true, ", note: event.data.email", "\n        note: {type: string}"))
	cmd, done = start()
	appendCustomers(50, 60, nil)
	consume(59, 1)
	v2 := version(2)
	if ids[v2.ID] != 10 || ids[v1.ID] != 49 || v2.ID == v1.ID {
		t.Errorf("schema ids %v; want 49 × %d (v1) and 10 × %d (v2)", ids, v1.ID, v2.ID)
	}
	for i := 50; i < 60; i++ {
		if v, ok := values[i]; !ok || v.Note == nil || *v.Note != v.Email || v.Seq != i {
			t.Errorf("customer %d after the compatible change: %+v (published %v)", i, v, ok)
		}
	}
	// 4. The same incompatible change as a reload (SIGHUP) while it runs:
	// refused, the running rules stay, publishing goes on with version 2.
	writeRules(registryRuleText(topic, false, "", ""))
	off, _ = logf.Seek(0, 1)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); !strings.Contains(tailFrom(t, logPath, off), "rule reload refused"); {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal of the incompatible reload within a minute:\n%s", tailFrom(t, logPath, off))
		}
		time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
	}
	if out := tailFrom(t, logPath, off); !strings.Contains(out, `field \"seq\" removed`) {
		t.Errorf("the reload's refusal does not name the removed field:\n%s", out)
	}
	appendCustomers(60, 65, nil)
	consume(64, 1)
	if ids[v2.ID] != 15 {
		t.Errorf("schema ids %v after the refused reload; want 15 × %d (v2: the running rules)", ids, v2.ID)
	}
	if vs, err := srcl.SubjectVersions(ctx, subject); err != nil || len(vs) != 2 {
		t.Errorf("versions %v %v after the refused reload; want 2", vs, err)
	}
	// Nothing published twice across the stop, the refusal and the restart.
	drain, stopDrain := context.WithTimeout(ctx, 3*time.Second)
	for drain.Err() == nil {
		cl.PollFetches(drain).EachRecord(func(r *kgo.Record) {
			if r.Topic == topic {
				t.Errorf("an extra record after the 64 expected: offset %d %q", r.Offset, r.Value)
			}
		})
	}
	stopDrain()
	if len(seen) != 64 {
		t.Errorf("%d distinct ce_id for 64 records", len(seen))
	}
	stopPublisher(t, cmd, done, 0)
}

// stopPublisher sends SIGTERM (unless the process exits by itself first, as a
// refused start does) and checks the exit code.
func stopPublisher(t *testing.T, cmd *exec.Cmd, done chan error, want int) {
	t.Helper()
	if want == 0 {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the publisher did not exit within 90s (want exit %d)", want)
	}
	if got := cmd.ProcessState.ExitCode(); got != want {
		t.Fatalf("the publisher exited %d; want %d", got, want)
	}
}

// tailFrom is the log from byte offset off on.
func tailFrom(t *testing.T, path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(off, int64(len(b))):])
}
