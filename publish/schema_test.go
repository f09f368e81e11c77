package publish_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/publish/kafka/registry"
	"github.com/chronicler-dev/chronicler/test/stack"
)

const schemaRulesYAML = `
promote:
  - name: customer-changed
    from: [CustomerChanged]
    topic: {{customers}}
    type: crm.customer.changed.v1
    value: {id: event.data.id, email: event.data.email, seq: event.data.seq{{extra}}}
    schema:
      type: object
      additionalProperties: false
      properties:
        id: {type: integer}
        email: {type: string, format: email}
        seq: {type: integer}{{extraSchema}}
      required: [id, email{{required}}]
`

func schemaRules(extra, extraSchema, required string) string {
	return strings.NewReplacer("{{extra}}", extra, "{{extraSchema}}", extraSchema, "{{required}}", required).Replace(schemaRulesYAML)
}

// TestPublishWithSchemaRegistry: with a registry the publisher registers
// the rule's schema before it starts and frames every value with its id,
// so a read_committed consumer decodes each record with the id it carries
// (franz-go's Serde); a value that violates the schema is dead-lettered
// with the violation; a rule reload with an incompatible schema is refused
// by CheckSchemas, and so is a second instance starting with it, before it
// fences the running one; a compatible one (a new optional field) registers
// version 2 and its values carry the new id.
func TestPublishWithSchemaRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg := stack.StartRegistry(t)
	k := stack.StartKafka(t)
	db, n, s := startStore(t)
	rc, err := registry.New(registry.Config{URL: reg.URL})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(db, loadRulesText(t, n, schemaRules("", "", ", seq")), k, n, kafka.ExactlyOnce)
	cfg.Registry = rc
	s.appendTx(1, customer(1, 0, "ada@example.org"))
	s.appendTx(2, customer(2, 0, "not an address"))
	s.appendTx(3, customer(1, 1, "ada@lovelace.org"))
	r := start(t, cfg)
	r.waitThrough(t, s.last)

	srcl, err := sr.NewClient(sr.URLs(reg.URL))
	if err != nil {
		t.Fatal(err)
	}
	subject := n.customers + "-value"
	v1, err := srcl.SchemaByVersion(ctx, subject, -1)
	if err != nil || v1.Version != 1 {
		t.Fatalf("subject %s: %+v %v; want version 1 registered at start", subject, v1, err)
	}
	type value struct {
		ID    int
		Email string
		Seq   int
		Note  *string
	}
	var serde sr.Serde
	serde.Register(v1.ID, value{}, sr.DecodeFn(json.Unmarshal))
	recs := readTopic(t, k, n.customers)
	if len(recs) != 2 {
		t.Fatalf("%d records on %s; want 2 (the third event is dead-lettered)", len(recs), n.customers)
	}
	for i, rec := range recs {
		var v value
		if err := serde.Decode(rec.Value, &v); err != nil {
			t.Fatalf("record %d (%q): %v", i, rec.Value, err)
		}
		if v.ID != 1 || v.Seq != i || header(rec, kafka.HeaderType) != "crm.customer.changed.v1" {
			t.Errorf("record %d: %+v, headers %v", i, v, rec.Headers)
		}
	}
	dead := readTopic(t, k, n.dead)
	if len(dead) != 1 || header(dead[0], kafka.HeaderDLRule) != "customer-changed" || header(dead[0], kafka.HeaderDLStream) != "customer-2" ||
		!strings.Contains(header(dead[0], kafka.HeaderDLError), "violates the rule's schema") || !strings.Contains(header(dead[0], kafka.HeaderDLError), "at /email") {
		t.Fatalf("dead letters %d; want one for customer-2 with the violation: %v", len(dead), func() any {
			if len(dead) > 0 {
				return dead[0].Headers
			}
			return nil
		}())
	}

	// A reload that removes a required field is refused: nothing changes.
	removed := loadRulesText(t, n, strings.NewReplacer(", seq: event.data.seq", "", "\n        seq: {type: integer}", "").Replace(schemaRules("", "", "")))
	err = r.p.CheckSchemas(ctx, removed)
	var ie *registry.IncompatibleError
	if !errors.As(err, &ie) || ie.Subject != subject || !strings.Contains(err.Error(), `field "seq" removed`) {
		t.Fatalf("the incompatible reload: %v; want an *IncompatibleError naming %s and seq", err, subject)
	}
	// A second instance started with those rules is refused before it
	// takes the transactional id: the running publisher is not fenced (it
	// goes on publishing below).
	second := cfg
	second.Rules = removed
	if err := start(t, second).wait(t, time.Minute); !errors.As(err, &ie) {
		t.Fatalf("a second instance with the incompatible rules: %v; want an *IncompatibleError, before it fences the running one", err)
	}
	// A compatible one registers version 2, and its values carry its id.
	optional := loadRulesText(t, n, schemaRules(", note: event.data.email", "\n        note: {type: string}", ", seq"))
	if err := r.p.CheckSchemas(ctx, optional); err != nil {
		t.Fatal(err)
	}
	<-r.p.SwapRules(optional)
	s.appendTx(4, customer(1, 2, "ada@lovelace.org"))
	r.waitThrough(t, s.last)
	v2, err := srcl.SchemaByVersion(ctx, subject, -1)
	if err != nil || v2.Version != 2 || v2.ID == v1.ID {
		t.Fatalf("after the compatible reload: %+v %v; want version 2 with a new id", v2, err)
	}
	serde.Register(v2.ID, value{}, sr.DecodeFn(json.Unmarshal))
	recs = readTopic(t, k, n.customers)
	if len(recs) != 3 {
		t.Fatalf("%d records; want 3", len(recs))
	}
	var v value
	id, _, err := serde.DecodeID(recs[2].Value)
	if err != nil || id != v2.ID || serde.Decode(recs[2].Value, &v) != nil || v.Note == nil || *v.Note != "ada@lovelace.org" || v.Seq != 2 {
		t.Fatalf("the record after the reload: id %d (want %d), %+v, %v", id, v2.ID, v, err)
	}

	// Replay with the same rules and registry: the live records, byte for
	// byte (framed with version 2's id), for the events the rules accept.
	into := "replay-" + uniq(t)
	st, err := publish.Replay(ctx, publish.ReplayConfig{Store: db, Rules: optional, Promotion: "customer-changed", From: publish.ReplayFrom{Start: true}, Topic: into,
		Kafka: kafka.ClusterConfig{Brokers: k.Brokers, CreateTopics: true, Partitions: 3, ReplicationFactor: 1}, Registry: rc})
	if err != nil || st.Records != 3 || st.DeadLetters != 1 {
		t.Fatalf("replay: %+v %v; want 3 records and 1 failure", st, err)
	}
	replayed := readTopic(t, k, into)
	last := replayed[len(replayed)-1]
	for _, r := range replayed {
		if header(r, kafka.HeaderID) == header(recs[2], kafka.HeaderID) {
			last = r
		}
	}
	if len(replayed) != 3 || string(last.Value) != string(recs[2].Value) {
		t.Errorf("replayed %d records; the last one's value %q, the live one's %q", len(replayed), last.Value, recs[2].Value)
	}
}
