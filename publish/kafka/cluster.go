package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// DefaultMaxRecordBytes is the largest record (key + value + headers) the
// publisher produces; larger ones are dead-lettered. It matches franz-go's
// default producer batch limit and Kafka's default message.max.bytes.
const DefaultMaxRecordBytes = 1000000

// ClusterConfig is how to reach Kafka and how to write: every client of
// the cluster (the publisher's writer, replay, `chronicler check` and
// `status`) is made from it.
type ClusterConfig struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// Compression: none (default), gzip, snappy, lz4 or zstd.
	Compression string
	// MaxRecordBytes: records larger than this are dead-lettered instead of
	// failing the whole transaction. Default DefaultMaxRecordBytes.
	MaxRecordBytes int
	// TLS, when Enabled, encrypts connections. Default off.
	TLS TLSConfig
	// SASL, when Mechanism is set, authenticates. Default none.
	SASL SASLConfig
	// CreateTopics creates missing integration and dead-letter topics at
	// start, and again when one is deleted under a running publisher, with
	// Partitions and ReplicationFactor. Default false: a missing topic is an
	// error naming it (at start, or when a commit finds it gone).
	CreateTopics bool
	// Partitions for created topics. Default 1 (0 means default).
	Partitions int32
	// ReplicationFactor for created topics. Default -1 (the broker's).
	ReplicationFactor int16
}

// TLSConfig configures TLS. Files are PEM. When Enabled, the brokers'
// certificates are verified by default: signed by CAFile's CA (else the
// system roots) and naming the host dialled (or ServerName).
type TLSConfig struct {
	Enabled            bool
	CAFile             string // default: the system roots
	CertFile, KeyFile  string // client certificate, both or neither
	ServerName         string // default: the broker host
	InsecureSkipVerify bool   // accept any certificate: an explicit opt-in, `check` warns
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
	Mechanism string
	User      string
	Password  string // never logged
	Token     string // OAUTHBEARER token; never logged
	// PasswordFile and TokenFile, when set, are read at every new broker
	// connection (a trailing newline dropped) and replace Password and
	// Token: a rotated secret is used from the next connection on, without
	// a restart. Default "".
	PasswordFile, TokenFile string
}

// Validate fills defaults and returns every problem, each named by its
// setting under path.
func (k *ClusterConfig) Validate(path string) []error {
	var errs []error
	if len(k.Brokers) == 0 {
		errs = append(errs, fmt.Errorf("%s.brokers: at least one broker (host:port) is required", path))
	}
	for i, b := range k.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("%s.brokers[%d] %q: want host:port", path, i, b))
		}
	}
	switch strings.ToLower(k.Compression) {
	case "", "none", "gzip", "snappy", "lz4", "zstd":
	default:
		errs = append(errs, fmt.Errorf("%s.compression %q: want none, gzip, snappy, lz4 or zstd", path, k.Compression))
	}
	if k.MaxRecordBytes < 0 {
		errs = append(errs, fmt.Errorf("%s.maxRecordBytes %d: must be > 0", path, k.MaxRecordBytes))
	}
	if k.MaxRecordBytes == 0 {
		k.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if k.Partitions < 0 {
		errs = append(errs, fmt.Errorf("%s.partitions %d: must be > 0", path, k.Partitions))
	}
	if k.Partitions == 0 {
		k.Partitions = 1
	}
	if k.ReplicationFactor == 0 {
		k.ReplicationFactor = -1
	}
	if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s.tls: cert_file and key_file go together", path))
	}
	switch strings.ToUpper(k.SASL.Mechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if k.SASL.User == "" {
			errs = append(errs, fmt.Errorf("%s.sasl.user: required for %s", path, k.SASL.Mechanism))
		}
	case "OAUTHBEARER":
		if k.SASL.Token == "" && k.SASL.TokenFile == "" {
			errs = append(errs, fmt.Errorf("%s.sasl.token: required for OAUTHBEARER", path))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.sasl.mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", path, k.SASL.Mechanism))
	}
	return errs
}

// ProducerOpts turns the configuration into franz-go options for a
// producer (seed brokers excluded): compression plus ConnectionOpts.
func (k *ClusterConfig) ProducerOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	conn, err := k.ConnectionOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts, conn...)
	switch strings.ToLower(k.Compression) {
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	return opts, nil
}

// ConnectionOpts are the franz-go options that reach and authenticate to
// the brokers (TLS and SASL; seed brokers excluded), for any client of the
// same cluster: the publisher's, replay's, and `chronicler check`'s.
// ClientOpts adds the seed brokers.
func (k *ClusterConfig) ConnectionOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if k.TLS.Enabled {
		tc, err := k.TLS.Build("kafka.tls")
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	// The mechanisms take a function franz-go calls for every connection
	// it authenticates: the secret files are read there.
	sc := k.SASL
	pass := func() (string, error) { return secret(sc.Password, sc.PasswordFile, "kafka.sasl.password_file") }
	scramAuth := func(context.Context) (scram.Auth, error) {
		pw, err := pass()
		return scram.Auth{User: sc.User, Pass: pw}, err
	}
	switch m := strings.ToUpper(sc.Mechanism); m {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Plain(func(context.Context) (plain.Auth, error) {
			pw, err := pass()
			return plain.Auth{User: sc.User, Pass: pw}, err
		})))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Sha256(scramAuth)))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Sha512(scramAuth)))
	case "OAUTHBEARER":
		opts = append(opts, kgo.SASL(oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := secret(sc.Token, sc.TokenFile, "kafka.sasl.token_file")
			return oauth.Auth{Token: tok}, err
		})))
	case "":
	default:
		return nil, errors.New("kafka.sasl.mechanism: unsupported " + m)
	}
	return opts, nil
}

// secret is value, or when file is set the file's content read now (a
// trailing newline dropped). Errors name setting and the file, never the
// content.
func secret(value, file, setting string) (string, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w (mount the secret there)", setting, file, errors.Unwrap(err))
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", setting, file)
	}
	return s, nil
}

// ClientOpts are the seed brokers and ConnectionOpts: a client that reads or
// administers, and never produces.
func (k *ClusterConfig) ClientOpts() ([]kgo.Opt, error) {
	conn, err := k.ConnectionOpts()
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, conn...), nil
}

// Build makes the crypto/tls configuration (TLS 1.2 at least; the CA file's
// certificates as the roots when set, else the system's; the client
// certificate when set). path names the settings in errors ("kafka.tls").
// Enabled is the caller's to test.
func (t TLSConfig) Build(path string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", path, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file %s: no PEM certificate in it", path, t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file/key_file: %w", path, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
