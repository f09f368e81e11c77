package config

import (
	"errors"
	"net/url"
	"os"

	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/publish/kafka/registry"
)

// validateRegistry checks kafka.schema_registry (only when its url is set:
// the registry is off without one).
func (c *Config) validateRegistry(v *validator) {
	r := &c.Kafka.SchemaRegistry
	oneOf(v, "kafka.schema_registry.subject_strategy", r.SubjectStrategy, string(registry.TopicName), string(registry.RecordName), string(registry.TopicRecordName))
	duration(v, "kafka.schema_registry.timeout", r.Timeout)
	if r.URL == "" {
		return
	}
	switch u, err := url.Parse(r.URL); {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.bad("kafka.schema_registry.url", "is not http://host:port or https://host:port (with the API's path, if any)")
	case u.User != nil:
		v.bad("kafka.schema_registry.url", "holds credentials: use kafka.schema_registry.username and a password (password_file or CHRONICLER_KAFKA_SCHEMA_REGISTRY_PASSWORD), or a token")
	}
	if r.Token != "" && r.Username != "" {
		v.bad("kafka.schema_registry.token", "a token and a username are both set: keep one (bearer or basic authentication)")
	}
	if (r.Username == "") != (r.Password == "") {
		v.bad("kafka.schema_registry.username", "basic authentication needs kafka.schema_registry.username and a password (password_file or CHRONICLER_KAFKA_SCHEMA_REGISTRY_PASSWORD)")
	}
	t := r.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.bad("kafka.schema_registry.tls.cert_file", "cert_file and key_file go together: set both or neither")
	}
	for path, f := range map[string]string{"kafka.schema_registry.tls.ca_file": t.CAFile, "kafka.schema_registry.tls.cert_file": t.CertFile, "kafka.schema_registry.tls.key_file": t.KeyFile} {
		if f != "" {
			if _, err := os.Stat(c.rel(f)); err != nil {
				v.bad(path, "%s: %v", f, errors.Unwrap(err))
			}
		}
	}
}

// RegistryConfig is the schema registry client's configuration; ok false
// when kafka.schema_registry.url is not set (no registry).
func (c *Config) RegistryConfig() (rc registry.Config, ok bool) {
	r := c.Kafka.SchemaRegistry
	if r.URL == "" {
		return rc, false
	}
	return registry.Config{
		URL:        r.URL,
		Strategy:   registry.Strategy(r.SubjectStrategy),
		LookupOnly: r.LookupOnly,
		TLS: kafka.TLSConfig{
			CAFile: r.TLS.CAFile, CertFile: r.TLS.CertFile, KeyFile: r.TLS.KeyFile,
			ServerName: r.TLS.ServerName, InsecureSkipVerify: r.TLS.InsecureSkipVerify,
		},
		Username: r.Username, Password: r.Password, Token: r.Token,
		Timeout: dur(r.Timeout),
	}, true
}

// Registry is the schema registry client of kafka.schema_registry, nil
// when it is off.
func (c *Config) Registry() (*registry.Client, error) {
	rc, ok := c.RegistryConfig()
	if !ok {
		return nil, nil
	}
	return registry.New(rc)
}

// RegistryFromEnv is the schema registry at url configured by the
// CHRONICLER_KAFKA_SCHEMA_REGISTRY_* variables alone (credentials, secret
// files, TLS, subject strategy), as `chronicler rules check --registry`
// reads it: no file, and no other setting is read or required. Relative
// paths are the working directory's.
func RegistryFromEnv(url string, env Environment) (*registry.Client, error) {
	c, err := registryFromEnv(url, env)
	if err != nil {
		return nil, err
	}
	return c.Registry()
}

func registryFromEnv(url string, env Environment) (*Config, error) {
	c := Defaults()
	v := &validator{fromEnv: map[string]string{}}
	applyEnvUnder(&c, env, v, "kafka.schema_registry.")
	c.Kafka.SchemaRegistry.URL = url
	c.readSecrets(v, c.registrySecrets())
	c.validateRegistry(v)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &c, nil
}
