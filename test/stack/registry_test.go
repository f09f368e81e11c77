package stack_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestRegistryCompatibility proves the stack's registry is a real one, with
// the semantics the publisher relies on: the global level is BACKWARD; for a
// closed JSON Schema (additionalProperties: false) a new optional field is
// compatible and registers a new version, removing a required field is not
// and the registration is refused; registering a schema again returns its
// id.
func TestRegistryCompatibility(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := stack.StartRegistry(t)
	cl, err := sr.NewClient(sr.URLs(r.URL))
	if err != nil {
		t.Fatal(err)
	}
	subject := fmt.Sprintf("stack-selftest-%d-value", time.Now().UnixNano())
	js := func(s string) sr.Schema { return sr.Schema{Type: sr.TypeJSON, Schema: s} }
	v1 := js(`{"type":"object","additionalProperties":false,"properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a","b"]}`)
	optional := js(`{"type":"object","additionalProperties":false,"properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{"type":"string"}},"required":["a","b"]}`)
	removed := js(`{"type":"object","additionalProperties":false,"properties":{"a":{"type":"string"}},"required":["a"]}`)

	if lv := cl.Compatibility(ctx); lv[0].Err != nil || lv[0].Level != sr.CompatBackward {
		t.Fatalf("global compatibility: %+v; want BACKWARD", lv[0])
	}
	id1, err := cl.RegisterSchema(ctx, subject, v1, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if lv := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject); lv[0].Err != nil || lv[0].Level != sr.CompatBackward {
		t.Fatalf("compatibility of the subject: %+v; want BACKWARD (the global level)", lv[0])
	}
	if res, err := cl.CheckCompatibility(ctx, subject, -1, removed); err != nil || res.Is {
		t.Errorf("removing a required field: compatible %v, err %v; want incompatible", res.Is, err)
	}
	if _, err := cl.RegisterSchema(ctx, subject, removed, -1, -1); err == nil {
		t.Error("registering the schema without the required field succeeded; want it refused")
	}
	if res, err := cl.CheckCompatibility(ctx, subject, -1, optional); err != nil || !res.Is {
		t.Errorf("a new optional field: compatible %v, err %v; want compatible", res.Is, err)
	}
	id2, err := cl.RegisterSchema(ctx, subject, optional, -1, -1)
	if err != nil || id2 == id1 {
		t.Fatalf("registering the compatible schema: id %d (v1's %d), %v", id2, id1, err)
	}
	if again, err := cl.RegisterSchema(ctx, subject, v1, -1, -1); err != nil || again != id1 {
		t.Errorf("registering v1 again: id %d, %v; want %d", again, err, id1)
	}
	versions, err := cl.SubjectVersions(ctx, subject)
	if err != nil || len(versions) != 2 {
		t.Errorf("versions %v, %v; want 2", versions, err)
	}
}
