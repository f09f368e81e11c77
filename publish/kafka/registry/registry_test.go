package registry_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/publish/kafka/registry"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// rules returns a rule set with one rule on topic whose value has the
// fields and whose schema is a closed object with props, required listed.
func rules(t *testing.T, topic, fields, props, required string) *mapping.RuleSet {
	t.Helper()
	src := fmt.Sprintf(`promote:
  - name: contact
    from: ContactChanged
    topic: %s
    type: crm.contact-changed.v1
    value: {%s}
    schema:
      type: object
      additionalProperties: false
      properties: {%s}
      required: [%s]
`, topic, fields, props, required)
	rs, err := mapping.LoadBytes("rules.yaml", []byte(src), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

const (
	v1Fields   = "id: event.data.id, email: event.data.email"
	v1Props    = "id: {type: integer}, email: {type: string}"
	v1Required = "id, email"
)

func newClient(t *testing.T, cfg registry.Config) *registry.Client {
	t.Helper()
	cl, err := registry.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func uniqTopic(t *testing.T) string {
	return fmt.Sprintf("%s.%d", strings.ToLower(t.Name()), time.Now().UnixNano())
}

// TestResolveEvolvesASubject walks a subject through the contract's life
// against a real registry: the first start registers version 1, a restart
// looks it up (same id), removing a required field is refused with the
// rule, the subject and the field named and registers nothing, and a new
// optional field registers version 2 that Check then reports registered.
func TestResolveEvolvesASubject(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg := stack.StartRegistry(t)
	topic := uniqTopic(t)
	subject := topic + "-value"
	v1 := rules(t, topic, v1Fields, v1Props, v1Required)

	cl := newClient(t, registry.Config{URL: reg.URL})
	ids, err := cl.Resolve(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	if ids["contact"] <= 0 || cl.Subject(v1.Schema("contact")) != subject {
		t.Fatalf("ids %v, subject %s", ids, cl.Subject(v1.Schema("contact")))
	}
	// A restart (a new client): looked up, the same id, no new version.
	again, err := newClient(t, registry.Config{URL: reg.URL, LookupOnly: true}).Resolve(ctx, v1)
	if err != nil || !reflect.DeepEqual(again, ids) {
		t.Fatalf("lookup after restart: %v %v; want %v", again, err, ids)
	}

	removed := rules(t, topic, "id: event.data.id", "id: {type: integer}", "id")
	_, err = newClient(t, registry.Config{URL: reg.URL}).Resolve(ctx, removed)
	var ie *registry.IncompatibleError
	if !errors.As(err, &ie) {
		t.Fatalf("removing a required field: %v; want an *IncompatibleError", err)
	}
	if ie.Subject != subject || ie.Version != 1 || ie.ID != ids["contact"] || ie.Level != "BACKWARD" || !reflect.DeepEqual(ie.Fields, []string{`field "email" removed`}) ||
		!strings.Contains(ie.Rules, `"contact" (rules.yaml:8:7)`) {
		t.Errorf("incompatible: %+v", ie)
	}
	for _, want := range []string{`rule "contact" (rules.yaml:8:7)`, `subject "` + subject + `"`, `field "email" removed`, "BACKWARD", "nothing was registered"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	st, err := cl.Check(ctx, removed)
	if err != nil || len(st) != 1 || st[0].Compatible || st[0].Registered || st[0].Latest != 1 || st[0].Err != nil || len(st[0].Fields) != 1 {
		t.Errorf("check of the incompatible schema: %+v, %v", st, err)
	}

	optional := rules(t, topic, v1Fields+", phone: event.data.phone", v1Props+", phone: {type: [string, \"null\"]}", v1Required)
	if st, err := cl.Check(ctx, optional); err != nil || len(st) != 1 || !st[0].Compatible || st[0].Registered || st[0].Latest != 1 {
		t.Errorf("check of the compatible schema before it is registered: %+v, %v", st, err)
	}
	ids2, err := cl.Resolve(ctx, optional)
	if err != nil {
		t.Fatalf("a new optional field: %v", err)
	}
	if ids2["contact"] == ids["contact"] {
		t.Errorf("the compatible schema has v1's id %d", ids["contact"])
	}
	st, err = cl.Check(ctx, optional)
	if err != nil || len(st) != 1 || !st[0].Registered || st[0].Version != 2 || st[0].ID != ids2["contact"] || st[0].Level != "BACKWARD" {
		t.Errorf("check after registering: %+v, %v", st, err)
	}
	info, err := cl.Describe(ctx)
	if err != nil || info.Level != "BACKWARD" || !contains(info.Subjects, subject) {
		t.Errorf("describe: %+v %v", info, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestLookupOnly: a schema not registered is an error naming the subject,
// and nothing is registered.
func TestLookupOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := stack.StartRegistry(t)
	topic := uniqTopic(t)
	_, err := newClient(t, registry.Config{URL: reg.URL, LookupOnly: true}).Resolve(ctx, rules(t, topic, v1Fields, v1Props, v1Required))
	var ne *registry.NotRegisteredError
	if !errors.As(err, &ne) || ne.Subject != topic+"-value" {
		t.Fatalf("%v; want a *NotRegisteredError for %s-value", err, topic)
	}
	srcl, _ := sr.NewClient(sr.URLs(reg.URL))
	if _, err := srcl.SubjectVersions(ctx, topic+"-value"); err == nil {
		t.Error("the subject exists: lookup_only registered something")
	}
}

// TestSubjectStrategies names subjects by topic, record name (the title,
// else the type) and both.
func TestSubjectStrategies(t *testing.T) {
	rs, err := mapping.LoadBytes("r.yaml", []byte(`promote:
  - {name: a, from: A, topic: t1, type: a.v1, value: {x: event.data.x}, schema: {title: Alpha, type: object}}
  - {name: b, from: B, topic: t1, type: b.v1, value: {x: event.data.x}, schema: {type: object, required: [x]}}
`), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for strategy, want := range map[registry.Strategy][2]string{
		registry.TopicName:       {"t1-value", "t1-value"},
		registry.RecordName:      {"Alpha", "b.v1"},
		registry.TopicRecordName: {"t1-Alpha", "t1-b.v1"},
	} {
		cl := newClient(t, registry.Config{URL: "http://127.0.0.1:1", Strategy: strategy})
		if a, b := cl.Subject(rs.Schema("a")), cl.Subject(rs.Schema("b")); a != want[0] || b != want[1] {
			t.Errorf("%s: %s, %s; want %v", strategy, a, b, want)
		}
	}
	// Under the topic strategy the two rules share t1-value with different
	// schemas: refused before anything is asked of the registry.
	_, err = newClient(t, registry.Config{URL: "http://127.0.0.1:1"}).Resolve(context.Background(), rs)
	var ce *registry.ConflictError
	if !errors.As(err, &ce) || ce.Subject != "t1-value" || !strings.Contains(err.Error(), `"a" (r.yaml:2:`) || !strings.Contains(err.Error(), `"b" (r.yaml:3:`) {
		t.Errorf("%v; want a *ConflictError on t1-value naming both rules", err)
	}
}

// TestMixedTopic: a rule without a schema on a topic where another rule has
// one is refused (its plain JSON would sit among framed values).
func TestMixedTopic(t *testing.T) {
	rs, err := mapping.LoadBytes("r.yaml", []byte(`promote:
  - {name: a, from: A, topic: t1, type: a.v1, value: {x: event.data.x}, schema: {type: object}}
  - {name: b, from: B, topic: t1, type: b.v1, value: {x: event.data.x}}
  - {name: c, from: C, topic: t2, type: c.v1, value: {x: event.data.x}}
`), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newClient(t, registry.Config{URL: "http://127.0.0.1:1", Strategy: registry.RecordName}).Resolve(context.Background(), rs)
	var me *registry.MixedTopicError
	if !errors.As(err, &me) || me.Topic != "t1" || !reflect.DeepEqual(me.Without, []string{"b"}) {
		t.Errorf("%v; want a *MixedTopicError for t1 naming b", err)
	}
}

// TestFrameDecodesWithSerde: a framed value is what franz-go's Serde (and
// Confluent's deserializers) read: the id, then the JSON.
func TestFrameDecodesWithSerde(t *testing.T) {
	framed := registry.AppendFrame(nil, 4242, []byte(`{"id":7}`))
	if framed[0] != 0 || len(framed) != 5+8 {
		t.Fatalf("framed %x", framed)
	}
	var serde sr.Serde
	type value struct{ ID int }
	serde.Register(4242, value{}, sr.DecodeFn(json.Unmarshal))
	var v value
	if err := serde.Decode(framed, &v); err != nil || v.ID != 7 {
		t.Fatalf("decoded %+v, %v", v, err)
	}
	if id, rest, err := serde.DecodeID(framed); id != 4242 || string(rest) != `{"id":7}` || err != nil {
		t.Fatalf("id %d rest %s err %v", id, rest, err)
	}
}

// TestTLSAndBasicAuth: the client reaches a registry behind HTTPS with
// basic authentication (a TLS-terminating, authenticating proxy in front of
// the real registry, as deployments put it), trusting the proxy's CA from
// the CA file; a wrong password is a *RequestError that does not quote it.
func TestTLSAndBasicAuth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := stack.StartRegistry(t)
	target, _ := url.Parse(reg.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var authed, bearer int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		switch {
		case ok && u == "alice" && p == "s3cret":
			authed++
		case r.Header.Get("Authorization") == "Bearer tok-1":
			bearer++
		default:
			http.Error(w, `{"error_code":40101,"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/sr")
		proxy.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted client's handshake failure below
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := rules(t, uniqTopic(t), v1Fields, v1Props, v1Required)
	tlsCfg := kafka.TLSConfig{CAFile: ca}
	if _, err := newClient(t, registry.Config{URL: srv.URL + "/sr", TLS: tlsCfg, Username: "alice", Password: "s3cret"}).Resolve(ctx, rs); err != nil || authed == 0 {
		t.Fatalf("basic auth over TLS: %v (authenticated requests: %d)", err, authed)
	}
	if _, err := newClient(t, registry.Config{URL: srv.URL + "/sr", TLS: tlsCfg, Token: "tok-1"}).Check(ctx, rs); err != nil || bearer == 0 {
		t.Fatalf("bearer token over TLS: %v (requests: %d)", err, bearer)
	}
	_, err := newClient(t, registry.Config{URL: srv.URL + "/sr", TLS: tlsCfg, Username: "alice", Password: "wrong-pw"}).Resolve(ctx, rs)
	var re *registry.RequestError
	if !errors.As(err, &re) || strings.Contains(err.Error(), "wrong-pw") || !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("a wrong password: %v; want a *RequestError saying Unauthorized, without the password", err)
	}
	// Without the CA the proxy's certificate is not trusted.
	if _, err := newClient(t, registry.Config{URL: srv.URL + "/sr", Username: "alice", Password: "s3cret"}).Describe(ctx); err == nil {
		t.Error("an untrusted certificate was accepted")
	}
}

// TestUnreachable: a registry that does not answer is a *RequestError
// naming it and what was being done.
func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := newClient(t, registry.Config{URL: "http://127.0.0.1:1", Timeout: 2 * time.Second}).Resolve(ctx, rules(t, "t1", v1Fields, v1Props, v1Required))
	var re *registry.RequestError
	if !errors.As(err, &re) || re.Subject != "t1-value" || !strings.Contains(err.Error(), "http://127.0.0.1:1") {
		t.Errorf("%v; want a *RequestError naming the registry and the subject", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for name, c := range map[string]registry.Config{
		"no url":         {},
		"not http":       {URL: "ftp://x:1"},
		"credentials":    {URL: "http://u:p@x:1"},
		"strategy":       {URL: "http://x:1", Strategy: "subject"},
		"token and user": {URL: "http://x:1", Token: "t", Username: "u", Password: "p"},
		"user alone":     {URL: "http://x:1", Username: "u"},
		"cert alone":     {URL: "https://x:1", TLS: kafka.TLSConfig{CertFile: "c.pem"}},
	} {
		if errs := c.Validate("kafka.schema_registry"); len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "kafka.schema_registry") || strings.Contains(errs[0].Error(), ":p@") {
			t.Errorf("%s: %v; want one error naming the setting", name, errs)
		}
	}
}

func TestDifferences(t *testing.T) {
	doc := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	old := doc(`{"type":"object","additionalProperties":false,"required":["a","b"],"properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{"type":"object","properties":{"d":{"type":"string"}}},"e":{"type":"array","items":{"type":"object","properties":{"f":{"type":"string"}}}}}}`)
	next := doc(`{"type":"object","additionalProperties":false,"required":["a","c","g"],"properties":{"a":{"type":"integer"},"c":{"type":"object","additionalProperties":false,"properties":{"d":{"type":"string"},"h":{}}},"e":{"type":"array","items":{"type":"object","properties":{}}},"g":{}}}`)
	got := registry.Differences(old, next)
	want := []string{
		`field "b" removed`, `field "c" now required`, `field "g" added as required`,
		`field "a" changed type from string to integer`,
		`field "c" no longer allows other fields (additionalProperties: false)`, `field "c.h" added to an object that allowed any other field (old values may hold it with another type)`,
		`field "e[].f" removed`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
