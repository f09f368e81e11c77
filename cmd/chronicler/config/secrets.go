package config

import (
	"errors"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
)

// readSecretFiles reads every *_file setting into its secret. Setting both
// the secret and its file is an error: which one wins would be a guess.
func (c *Config) readSecretFiles(v *validator) {
	c.readSecrets(v, append([]secretFile{
		{"postgres.password", &c.Postgres.Password, &c.Postgres.PasswordFile},
		{"store.password", &c.Store.Password, &c.Store.PasswordFile},
		{"kafka.sasl.password", &c.Kafka.SASL.Password, &c.Kafka.SASL.PasswordFile},
		{"kafka.sasl.token", &c.Kafka.SASL.Token, &c.Kafka.SASL.TokenFile},
	}, c.registrySecrets()...))
}

// secretFile is a secret setting and the setting of the file holding it.
type secretFile struct {
	path        string
	value, file *string
}

func (c *Config) registrySecrets() []secretFile {
	r := &c.Kafka.SchemaRegistry
	return []secretFile{
		{"kafka.schema_registry.password", &r.Password, &r.PasswordFile},
		{"kafka.schema_registry.token", &r.Token, &r.TokenFile},
	}
}

func (c *Config) readSecrets(v *validator, secrets []secretFile) {
	for _, s := range secrets {
		if *s.file == "" {
			continue
		}
		if *s.value != "" {
			v.bad(s.path+"_file", "both %s and %s_file are set: keep one", s.path, s.path)
			continue
		}
		b, err := os.ReadFile(c.rel(*s.file))
		if err != nil {
			// The error names the file, never its content.
			v.bad(s.path+"_file", "%s: %v (mount the secret there or unset the setting)", *s.file, errors.Unwrap(err))
			continue
		}
		*s.value = strings.TrimRight(string(b), "\r\n")
		if *s.value == "" {
			v.bad(s.path+"_file", "%s is empty", *s.file)
		}
	}
}

// PostgresURL is postgres.url with postgres.password applied.
func (c *Config) PostgresURL() string {
	u, pw := c.Postgres.URL, c.Postgres.Password
	if pw == "" {
		return u
	}
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		// A query parameter overrides the URL's user info (libpq and pgconn).
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		return u + sep + "password=" + url.QueryEscape(pw)
	}
	return u + " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "'"
}

// Redacted is a copy with every secret, and every password in a URL,
// replaced by "<redacted>": safe to print.
func (c Config) Redacted() Config {
	out := c
	// Copy the slices so the original is not shared.
	out.Postgres.Tables = append([]string(nil), c.Postgres.Tables...)
	out.Rules.Paths = append([]string(nil), c.Rules.Paths...)
	root := reflect.ValueOf(&out).Elem()
	for _, k := range Keys() {
		if f := root.FieldByIndex(k.field); k.Secret && f.String() != "" {
			f.SetString("<redacted>")
		}
	}
	out.Postgres.URL = RedactURL(c.Postgres.URL)
	out.Store.URL = RedactURL(c.Store.URL)
	return out
}

// RedactURL hides the password of a connection string (URL or key=value).
func RedactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@")
		if at >= 0 {
			if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
				s = s[:i+3] + rest[:colon] + ":<redacted>" + rest[at:]
			}
		}
		if q := strings.IndexByte(s, '?'); q >= 0 {
			if vals, err := url.ParseQuery(s[q+1:]); err == nil && vals.Has("password") {
				vals.Set("password", "<redacted>")
				s = s[:q+1] + strings.ReplaceAll(vals.Encode(), "%3Credacted%3E", "<redacted>")
			}
		}
		return s
	}
	return kvPassword.ReplaceAllString(s, "${1}<redacted>")
}

// kvPassword matches password=... of a key=value connection string, quoted
// (with backslash escapes) or not.
var kvPassword = regexp.MustCompile(`(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
