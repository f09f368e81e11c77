package mapping

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

const deriveRules = `
capture:
  - name: email-changed
    table: public.customers
    on: [update]
    stream: {category: customer, id: new.id}
    type: EmailChanged
    data: {customerId: new.id, email: lower(new.email), at: new.updated_at}
  - name: phone-changed
    table: public.customers
    on: [update]
    stream: {category: customer, id: new.id}
    type: PhoneChanged
    data: {customerId: new.id, phone: new.phone}
promote:
  - name: contact
    from: [EmailChanged, PhoneChanged]
    topic: crm.contact.v1
    type: crm.contact-changed.v1
    value: {customerId: event.data.customerId, email: event.data.email, phone: event.data.phone, kind: '"contact"', n: len(event.type), tags: [event.type], source: event.data}
`

var deriveCatalogue = Catalogue{"public.customers": {Columns: []Column{
	{Name: "id", Type: "int8", NotNull: true}, {Name: "email", Type: "text", NotNull: true},
	{Name: "phone", Type: "text"}, {Name: "updated_at", Type: "timestamptz", NotNull: true},
}, ReplicaIdentity: "full", Key: []string{"id"}}}

// TestDeriveSchema drafts a schema from the value template, typing
// event.data fields through the capture rules that produce the events and
// the catalogue's column types; pinned in a file, the draft loads (the load
// check agrees with it) and the rule's values keep it.
func TestDeriveSchema(t *testing.T) {
	rs, err := LoadBytes("rules.yaml", []byte(deriveRules), Options{Catalogue: deriveCatalogue})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := rs.DeriveSchema("contact")
	if !ok {
		t.Fatal("no schema derived")
	}
	props := got["properties"].(map[string]any)
	want := map[string]any{
		"customerId": map[string]any{"type": "integer"},
		"email":      map[string]any{"type": []any{"null", "string"}},
		"kind":       map[string]any{"type": "string"},
		"n":          map[string]any{"type": "integer"},
		"tags":       map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
	}
	for k, w := range want {
		if !reflect.DeepEqual(props[k], w) {
			t.Errorf("%s: %v; want %v", k, props[k], w)
		}
	}
	for _, open := range []string{"phone", "source"} { // a nullable column; all of event.data
		if p := props[open].(map[string]any); p["type"] != nil || p["description"] == nil {
			t.Errorf("%s: %v; want open with a description", open, p)
		}
	}
	if got["additionalProperties"] != false || len(got["required"].([]string)) != 7 || got["title"] != "crm.contact-changed.v1" {
		t.Errorf("%v", got)
	}
	if _, ok := rs.DeriveSchema("nope"); ok {
		t.Error("a schema for a rule that does not exist")
	}

	// Pinned: the rules load with it, and a value of the rule keeps it.
	dir := t.TempDir()
	b, _ := rs.DeriveSchemaJSON("contact")
	if err := os.WriteFile(filepath.Join(dir, "contact.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	pinned := deriveRules + "    schema: contact.json\n"
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(pinned), 0o644); err != nil {
		t.Fatal(err)
	}
	rs2, err := Load([]string{filepath.Join(dir, "rules.yaml")}, Options{Catalogue: deriveCatalogue})
	if err != nil {
		t.Fatalf("the pinned draft does not load:\n%v", err)
	}
	ev := &StoredEvent{Stream: "customer-7", Type: "EmailChanged", Created: time.Unix(0, 0),
		Data: map[string]any{"customerId": int64(7), "email": "a@x.org", "at": "2026-01-01T00:00:00Z"}}
	out, err := rs2.Promote(ev, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("promoting with the pinned draft: %v %v", out, err)
	}
	var v map[string]any
	if err := json.Unmarshal(out[0].Value, &v); err != nil || v["phone"] != nil {
		t.Errorf("value %s", out[0].Value)
	}
}
