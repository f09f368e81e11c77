package mapping

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const schemaRules = `
promote:
  - name: contact
    from: [EmailChanged]
    topic: crm.contact.v1
    type: crm.contact-changed.v1
    value: {id: event.data.customerId, email: event.data.email}
    schema:
      title: ContactChanged
      type: object
      additionalProperties: false
      properties:
        id: {type: integer, minimum: 1}
        email: {type: string, format: email}
      required: [id, email]
`

// TestSchemaValidatesValues: a value that conforms is promoted; one that
// does not fails the rule with a *SchemaError naming the instance location,
// so the publisher dead-letters it like any promotion failure.
func TestSchemaValidatesValues(t *testing.T) {
	rs := mustLoad(t, schemaRules)
	s := rs.Schema("contact")
	if s == nil || len(rs.Schemas()) != 1 {
		t.Fatalf("schema of contact: %v (all: %v)", s, rs.Schemas())
	}
	wantText := `{"additionalProperties":false,"properties":{"email":{"format":"email","type":"string"},"id":{"minimum":1,"type":"integer"}},"required":["id","email"],"title":"ContactChanged","type":"object"}`
	if s.Text != wantText || s.Title != "ContactChanged" || s.Topic != "crm.contact.v1" || s.Type != "crm.contact-changed.v1" || s.Where != "test.yaml:9:7" {
		t.Errorf("schema %+v\nwant text %s", s, wantText)
	}
	ok := &StoredEvent{Stream: "customer-7", Type: "EmailChanged", Data: map[string]any{"customerId": int64(7), "email": "a@x.org"}}
	if out, err := rs.Promote(ok, nil); err != nil || len(out) != 1 {
		t.Fatalf("a conforming value: %v %v", out, err)
	}
	for name, data := range map[string]map[string]any{
		"wrong type":     {"customerId": "7", "email": "a@x.org"},
		"below minimum":  {"customerId": int64(0), "email": "a@x.org"},
		"missing field":  {"customerId": int64(7), "email": nil},
		"invalid format": {"customerId": int64(7), "email": "not an address"},
	} {
		out, err := rs.Promote(&StoredEvent{Stream: "customer-7", Type: "EmailChanged", Data: data}, nil)
		var ee *EvalError
		var se *SchemaError
		if len(out) != 0 || !errors.As(err, &ee) || ee.Field != "value" || !errors.Is(err, ErrSchemaViolation) || !errors.As(err, &se) {
			t.Errorf("%s: out %v err %v; want an EvalError on value caused by a SchemaError", name, out, err)
			continue
		}
		if len(se.Reasons) == 0 || !strings.HasPrefix(se.Reasons[0], "at /") || se.Rule != "contact" || !strings.Contains(se.Schema, "test.yaml:9:7") {
			t.Errorf("%s: %+v", name, se)
		}
		t.Logf("%s: %v", name, err)
	}
}

// TestSchemaFile: a schema in a .json file next to the rules (the path is
// relative to the rule file) is the same contract as the same schema
// written inline: equal canonical text.
func TestSchemaFile(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "schemas", "contact.json"), `{
  "type": "object", "title": "ContactChanged",
  "required": ["id", "email"],
  "additionalProperties": false,
  "properties": {"email": {"type": "string", "format": "email"}, "id": {"type": "integer", "minimum": 1}}
}`)
	rules := strings.Replace(schemaRules, "    schema:\n", "    schema: schemas/contact.json\n    x-inline:\n", 1)
	rules = rules[:strings.Index(rules, "    x-inline:")]
	write(t, filepath.Join(dir, "rules", "promote.yaml"), strings.Replace(rules, "schema: schemas/", "schema: ../schemas/", 1))
	rs, err := Load([]string{filepath.Join(dir, "rules")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := rs.Schema("contact")
	if s == nil || s.File != filepath.Join(dir, "rules", "..", "schemas", "contact.json") || s.Text != mustLoad(t, schemaRules).Schema("contact").Text {
		t.Fatalf("schema %+v", s)
	}
	if _, err := rs.Promote(&StoredEvent{Stream: "customer-7", Type: "EmailChanged", Data: map[string]any{"customerId": int64(7), "email": 5}}, nil); !errors.Is(err, ErrSchemaViolation) ||
		!strings.Contains(err.Error(), "contact.json") {
		t.Errorf("a violation: %v; want a SchemaError naming the schema file", err)
	}
	if got := SchemaFiles([]string{dir}); len(got) != 1 || filepath.Base(got[0]) != "contact.json" {
		t.Errorf("SchemaFiles: %v", got)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaProblems: every problem with a schema is a load problem at its
// file:line:col, all reported at once, including what the value template
// can be seen to break without evaluating anything.
func TestSchemaProblems(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "broken.json"), "{\n  \"type\": \"object\",\n  \"properties\": {,}\n}")
	src := `promote:
  - name: not-json-file
    from: A
    topic: t1
    type: a.v1
    value: {a: event.data.a}
    schema: schemas/a.yaml
  - name: missing-file
    from: A
    topic: t1
    type: a.v1
    value: {a: event.data.a}
    schema: nowhere.json
  - name: broken-file
    from: A
    topic: t1
    type: a.v1
    value: {a: event.data.a}
    schema: broken.json
  - name: not-a-schema
    from: A
    topic: t1
    type: a.v1
    value: {a: event.data.a}
    schema: {type: 5}
  - name: external-ref
    from: A
    topic: t1
    type: a.v1
    value: {a: event.data.a}
    schema: {$ref: "other.json#/x"}
  - name: shape
    from: A
    topic: t2
    type: b.v1
    value:
      id: event.data.id
      extra: event.data.x
      count: len(event.type)
      kind: 7
      nested: {a: event.data.a}
      list: [event.data.a, '"x"']
    schema:
      type: object
      additionalProperties: false
      definitions:
        nested: {type: object, properties: {a: {}, b: {}}, required: [a, b]}
      properties:
        id: {type: integer}
        count: {type: string}
        kind: {type: string}
        nested: {$ref: "#/definitions/nested"}
        list: {type: array, items: {type: integer}}
        name: {type: string}
      required: [id, name]
`
	write(t, filepath.Join(dir, "rules.yaml"), src)
	_, err := Load([]string{filepath.Join(dir, "rules.yaml")}, Options{})
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err %v; want a *LoadError", err)
	}
	rf := filepath.Join(dir, "rules.yaml")
	want := []struct{ file, rule, at, msg string }{
		{rf, "not-json-file", "7:13", "is not a .json file"},
		{rf, "missing-file", "13:13", "cannot read"},
		{filepath.Join(dir, "broken.json"), "broken-file", "3:18", "is not JSON"},
		{rf, "not-a-schema", "25:13", "invalid JSON Schema: at /type: "},
		{rf, "external-ref", "31:13", `it refers to "other.json": only references inside the schema`},
		{rf, "shape", "37:7", `value has no field "name", which the schema requires`},
		{rf, "shape", "38:14", "value.extra is not in the schema"},
		{rf, "shape", "39:14", "value.count: the expression returns int (JSON integer); the schema wants string"},
		{rf, "shape", "40:13", "value.kind is an integer; the schema wants string"},
		{rf, "shape", "41:15", `value.nested has no field "b"`},
		{rf, "shape", "42:28", "value.list[1]: the expression returns string (JSON string); the schema wants integer"},
	}
	t.Log(err)
	for _, w := range want {
		found := false
		for _, p := range le.Problems {
			at := strings.SplitN(strings.TrimPrefix(p.String(), p.File+":"), ":", 3)
			if p.File == w.file && p.Rule == w.rule && len(at) == 3 && at[0]+":"+at[1] == w.at && strings.Contains(p.Message, w.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem %q for rule %s at %s:%s", w.msg, w.rule, filepath.Base(w.file), w.at)
		}
	}
	if len(le.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(le.Problems), len(want), err)
	}
}
