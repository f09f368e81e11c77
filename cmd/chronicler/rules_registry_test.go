package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/chronicler-dev/chronicler/test/stack"
)

const registryRules = `promote:
  - name: contact
    from: ContactChanged
    topic: %s
    type: crm.contact-changed.v1
    value: {%s}
    schema:
      type: object
      additionalProperties: false
      properties: {%s}
      required: [id]
`

// TestRulesCheckRegistry: `rules check --registry` compares the rules'
// schemas with a real registry without writing to it: a new subject and a
// compatible change pass, removing a field of the registered version fails
// (exit 1) naming the subject and the field; bad registry settings exit 2.
func TestRulesCheckRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := stack.StartRegistry(t)
	topic := fmt.Sprintf("rules-check.%d", time.Now().UnixNano())
	subject := topic + "-value"
	write := func(fields, props string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "promote.yaml"), []byte(fmt.Sprintf(registryRules, topic, fields, props)), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	v1 := write("id: event.data.id, email: event.data.email", "id: {type: integer}, email: {type: string}")
	code, out, errOut := runCLI("rules", "check", v1, "--registry", reg.URL)
	if code != 0 || !strings.Contains(out, "ok   subject "+subject) || !strings.Contains(out, "a new subject") {
		t.Fatalf("a new subject: exit %d\n%s%s", code, out, errOut)
	}
	srcl, _ := sr.NewClient(sr.URLs(reg.URL))
	if _, err := srcl.SubjectVersions(ctx, subject); err == nil {
		t.Fatal("rules check registered the subject; it must write nothing")
	}
	// Deployed: version 1 registered.
	if _, err := srcl.RegisterSchema(ctx, subject, sr.Schema{Type: sr.TypeJSON,
		Schema: `{"additionalProperties":false,"properties":{"email":{"type":"string"},"id":{"type":"integer"}},"required":["id"],"type":"object"}`}, -1, -1); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI("rules", "check", v1, "--registry", reg.URL); code != 0 || !strings.Contains(out, "registered as version 1") {
		t.Errorf("the registered schema: exit %d\n%s%s", code, out, errOut)
	}
	removed := write("id: event.data.id", "id: {type: integer}")
	code, out, errOut = runCLI("rules", "check", removed, "--registry", reg.URL)
	if code != 1 || !strings.Contains(out, "FAIL subject "+subject) || !strings.Contains(out, `field "email" removed`) || !strings.Contains(out, "BACKWARD") {
		t.Errorf("a removed field: exit %d, want 1 naming the subject and the field\n%s%s", code, out, errOut)
	}
	added := write("id: event.data.id, email: event.data.email, phone: event.data.phone", "id: {type: integer}, email: {type: string}, phone: {type: string}")
	if code, out, errOut := runCLI("rules", "check", added, "--registry", reg.URL); code != 0 || !strings.Contains(out, "compatible with version 1 under BACKWARD") {
		t.Errorf("a new optional field: exit %d\n%s%s", code, out, errOut)
	}
	if vs, err := srcl.SubjectVersions(ctx, subject); err != nil || len(vs) != 1 {
		t.Errorf("versions %v %v: rules check wrote to the registry", vs, err)
	}
	if code, _, errOut := runCLI("rules", "check", v1, "--registry", "registry:8081"); code != 2 || !strings.Contains(errOut, "kafka.schema_registry.url") {
		t.Errorf("a URL without a scheme: exit %d, want 2\n%s", code, errOut)
	}
}

// TestRulesTestFailsOnAFixtureBreakingTheSchema: `rules test` exits 1 when
// an expected integration value violates its rule's schema.
func TestRulesTestFailsOnAFixtureBreakingTheSchema(t *testing.T) {
	dir := t.TempDir()
	rules := fmt.Sprintf(registryRules, "crm.contact.v1", "id: event.data.id, email: event.data.email", "id: {type: integer, minimum: 1}, email: {type: [string, 'null']}")
	tests := `tests:
  - name: a contact without an id
    stored: [{stream: contact-0, type: ContactChanged, data: {id: 0, email: a@x}}]
    integration: [{topic: crm.contact.v1, key: "0", type: crm.contact-changed.v1, value: {id: 0, email: a@x}}]
`
	for name, text := range map[string]string{"promote.yaml": rules, "promote_test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCLI("rules", "test", dir)
	if code != 1 || !strings.Contains(out, "expected integration event 1 (rule contact): value violates the rule's schema") || !strings.Contains(out, "at /id: minimum") {
		t.Fatalf("exit %d, want 1 with the violation\n%s%s", code, out, errOut)
	}
}

// TestRulesSchemaPrintsADraft: `rules schema` prints a JSON Schema for the
// rule's value that the rules then load with; an unknown rule exits 2.
func TestRulesSchemaPrintsADraft(t *testing.T) {
	dir := t.TempDir()
	rules := fmt.Sprintf(registryRules, "crm.contact.v1", "id: event.data.id, kind: '\"contact\"', n: len(event.type)", "id: {}, kind: {}, n: {}")
	if err := os.WriteFile(filepath.Join(dir, "promote.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("rules", "schema", dir, "--rule", "contact")
	var s struct {
		Properties map[string]map[string]any
		Required   []string
	}
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Properties["kind"]["type"] != "string" || s.Properties["n"]["type"] != "integer" || len(s.Required) != 3 {
		t.Fatalf("exit %d: %+v\n%s%s", code, s, out, errOut)
	}
	if code, _, errOut := runCLI("rules", "schema", dir, "--rule", "nope"); code != 2 || !strings.Contains(errOut, "contact") {
		t.Errorf("an unknown rule: exit %d\n%s", code, errOut)
	}
}
