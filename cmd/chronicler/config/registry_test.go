package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/publish/kafka/registry"
)

// TestRegistrySettings: every kafka.schema_registry problem is reported at
// its line, and a valid section becomes the client's configuration.
func TestRegistrySettings(t *testing.T) {
	dir := validDir(t)
	src := strings.Replace(valid, "  tls:\n", `  tls:
  schema_registry:
    url: https://u:pw@registry:8081
    subject_strategy: subject
    username: alice
    timeout: forever
    tls: {cert_file: nothere.pem}
`, 1)
	_, err := Parse(filepath.Join(dir, "c.yaml"), []byte(src), All, noEnv)
	got := map[string]int{}
	for _, e := range unwrap(t, err) {
		got[e.Path] = e.Line
	}
	base := 10 // the line of schema_registry:
	want := map[string]int{"kafka.schema_registry.url": base + 2, "kafka.schema_registry.subject_strategy": base + 3,
		"kafka.schema_registry.username": base + 4, "kafka.schema_registry.timeout": base + 5, "kafka.schema_registry.tls.cert_file": base + 6}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v\n%v", got, want, err)
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("the URL's password is printed: %v", err)
	}

	ok := strings.Replace(valid, "  tls:\n", "  tls:\n  schema_registry: {url: \"http://registry:8081/apis/ccompat/v7\", subject_strategy: topic_record, lookup_only: true}\n", 1)
	cfg, err := Parse(filepath.Join(dir, "c.yaml"), []byte(ok), All, envOf(map[string]string{"CHRONICLER_KAFKA_SCHEMA_REGISTRY_TOKEN": "tok-1"}))
	if err != nil {
		t.Fatal(err)
	}
	rc, on := cfg.RegistryConfig()
	if !on || rc.URL != "http://registry:8081/apis/ccompat/v7" || rc.Strategy != registry.TopicRecordName || !rc.LookupOnly || rc.Token != "tok-1" || rc.Timeout.String() != "10s" {
		t.Errorf("registry config %+v (on %v)", rc, on)
	}
	if d := Defaults(); d.Kafka.SchemaRegistry.URL != "" {
		t.Error("the registry is on by default")
	}
}

// TestRegistryFromEnv: `rules check --registry URL` reads the registry's
// variables only (a broken setting of another section is not its business),
// secret files included.
func TestRegistryFromEnv(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("tok-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := registryFromEnv("http://registry:8081", envOf(map[string]string{
		"CHRONICLER_KAFKA_SCHEMA_REGISTRY_TOKEN_FILE": tok, "CHRONICLER_KAFKA_SCHEMA_REGISTRY_SUBJECT_STRATEGY": "record",
		"CHRONICLER_POSTGRES_PASSWORD_FILE": filepath.Join(dir, "missing"), "CHRONICLER_KAFKA_PARTITIONS": "many",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if rc, _ := c.RegistryConfig(); rc.Token != "tok-2" || rc.Strategy != registry.RecordName {
		t.Errorf("%+v", rc)
	}
	_, err = registryFromEnv("registry:8081", noEnv)
	if errs := unwrap(t, err); len(errs) != 1 || errs[0].Path != "kafka.schema_registry.url" {
		t.Errorf("a URL without a scheme: %v", err)
	}
}
