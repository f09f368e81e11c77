package registry

import (
	"fmt"
	"net/url"
	"time"

	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// Strategy names the subject a rule's schema is registered under.
type Strategy string

// The strategies, named as kafka.schema_registry.subject_strategy takes
// them (Confluent's TopicNameStrategy, RecordNameStrategy and
// TopicRecordNameStrategy).
const (
	// TopicName: "<topic>-value". Every rule writing a topic shares its
	// subject, so they must declare the same schema. The default.
	TopicName Strategy = "topic"
	// RecordName: the record name, which is the schema's "title", else the
	// rule's integration event type.
	RecordName Strategy = "record"
	// TopicRecordName: "<topic>-<record name>".
	TopicRecordName Strategy = "topic_record"
)

// DefaultTimeout bounds one request to the registry.
const DefaultTimeout = 10 * time.Second

// Config is how to reach the registry and what to do there.
type Config struct {
	// URL is the registry's Confluent API base URL, http:// or https://
	// (e.g. https://registry:8081, or …/apis/ccompat/v7 for Apicurio).
	// Required. It may not hold credentials: use Username and Password.
	URL string
	// Strategy names the subjects. Default TopicName.
	Strategy Strategy
	// LookupOnly makes the publisher only look schemas up: a schema that is
	// not registered is a start-up error (register it in CI). Default false:
	// a new schema is registered when the registry finds it compatible.
	LookupOnly bool
	// TLS configures https URLs (its Enabled field is not used: the URL's
	// scheme decides). Files are PEM.
	TLS kafka.TLSConfig
	// Username and Password: HTTP basic authentication. Default none.
	Username, Password string // the password is never logged
	// Token: an HTTP bearer token, instead of basic authentication. Default
	// none; never logged.
	Token string
	// Timeout bounds each request. Default DefaultTimeout.
	Timeout time.Duration
}

// Validate fills defaults and returns every problem, each named by its
// setting under path ("kafka.schema_registry").
func (c *Config) Validate(path string) []error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, fmt.Errorf("%s.url: required", path))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("%s.url %q: want http://host:port or https://host:port (and the API's path, if any)", path, redactURL(c.URL)))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("%s.url: holds credentials: use %s.username and %s.password (or token)", path, path, path))
	}
	switch c.Strategy {
	case "":
		c.Strategy = TopicName
	case TopicName, RecordName, TopicRecordName:
	default:
		errs = append(errs, fmt.Errorf("%s.subject_strategy %q: want topic, record or topic_record", path, c.Strategy))
	}
	if c.Token != "" && (c.Username != "" || c.Password != "") {
		errs = append(errs, fmt.Errorf("%s: a token and a username/password are both set: keep one", path))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, fmt.Errorf("%s: username and password go together", path))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s.tls: cert_file and key_file go together", path))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s: timeout %s must be > 0", path, c.Timeout))
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return errs
}

// redactURL hides a password in a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
