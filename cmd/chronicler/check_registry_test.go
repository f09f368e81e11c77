package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestCheckReportsTheSchemaRegistry: with kafka.schema_registry.url,
// `chronicler check` reports the registry (reachable, subjects, global
// level) and the subject of the shop's schema with its level: new (ok),
// then, once an incompatible version is registered there by someone else,
// FAIL naming the field; an unreachable registry is a FAIL. check itself
// registers nothing.
func TestCheckReportsTheSchemaRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := stack.StartRegistry(t)
	s := startShop(t, true)
	s.createTopics(t, append(s.topics, s.dlTopic, s.cpTopic)...)
	withRegistry := func(url string) func(string) string {
		return func(y string) string {
			return strings.Replace(y, "kafka:\n", "kafka:\n  schema_registry: {url: \""+url+"\"}\n", 1)
		}
	}
	subject := s.topics[0] + "-value" // crm.customer-contact.<suffix>: the rule with a schema
	code, rep, all := checkJSON(t, "--only", "publish", "--config", s.configFile(t, "check_registry", withRegistry(reg.URL)))
	c, ok := findCheck(rep, "schema registry "+reg.URL)
	if code != 0 || !ok || c.Status != preflight.OK || !strings.Contains(c.Found, "global compatibility BACKWARD") {
		t.Fatalf("exit %d, registry line %+v\n%s", code, c, all)
	}
	c, ok = findCheck(rep, "schema registry subject "+subject)
	if !ok || c.Status != preflight.OK || !strings.Contains(c.Found, `rule "customer-contact-changed"`) || !strings.Contains(c.Found, "a new subject (compatibility BACKWARD)") {
		t.Fatalf("subject line %+v\n%s", c, all)
	}
	srcl, _ := sr.NewClient(sr.URLs(reg.URL))
	if _, err := srcl.SubjectVersions(ctx, subject); err == nil {
		t.Fatal("check registered the subject; it must write nothing")
	}

	// Someone registers a version with a field the shop's schema lacks.
	other := `{"type":"object","additionalProperties":false,"properties":{"customerId":{"type":"integer"},"email":{"type":["string","null"]},"phone":{"type":["string","null"]},"name":{"type":"string"}},"required":["customerId","email","phone","name"]}`
	if _, err := srcl.RegisterSchema(ctx, subject, sr.Schema{Type: sr.TypeJSON, Schema: other}, -1, -1); err != nil {
		t.Fatal(err)
	}
	code, rep, all = checkJSON(t, "--only", "publish", "--config", s.configFile(t, "check_registry", withRegistry(reg.URL)))
	c, _ = findCheck(rep, "schema registry subject "+subject)
	if code != 1 || c.Status != preflight.Fail || !strings.Contains(c.Found, "incompatible with version 1 under BACKWARD") || !strings.Contains(c.Found, `field "name" removed`) || c.Fix == "" {
		t.Fatalf("exit %d, subject line %+v\n%s", code, c, all)
	}

	code, rep, all = checkJSON(t, "--only", "publish", "--config", s.configFile(t, "check_registry", withRegistry("http://127.0.0.1:1")))
	if c, _ := findCheck(rep, "schema registry http://127.0.0.1:1"); code != 1 || c.Status != preflight.Fail || !strings.HasPrefix(c.Found, "unreachable") {
		t.Fatalf("unreachable: exit %d, %+v\n%s", code, c, all)
	}
}
