package kafka

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// TestKafkaClientOptions: every supported SASL mechanism and compression
// builds client options; a missing CA file is an error naming the setting;
// secrets never reach error text.
func TestKafkaClientOptions(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "scram-sha-512", "OAUTHBEARER"} {
		for _, comp := range []string{"", "none", "gzip", "snappy", "lz4", "zstd"} {
			k := ClusterConfig{Brokers: []string{"b:9092"}, Compression: comp, SASL: SASLConfig{Mechanism: mech, User: "u", Password: "hunter2", Token: "tok"}}
			if errs := k.Validate("kafka"); len(errs) > 0 {
				t.Fatalf("%s/%s: %v", mech, comp, errs)
			}
			opts, err := k.ProducerOpts()
			if err != nil || len(opts) != 2 {
				t.Errorf("%s/%s: %d options, %v; want compression and SASL", mech, comp, len(opts), err)
			}
		}
	}
	k := ClusterConfig{Brokers: []string{"b:9092"}, TLS: TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}, SASL: SASLConfig{Mechanism: "PLAIN", User: "u", Password: "hunter2"}}
	_, err := k.ProducerOpts()
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "kafka.tls.ca_file") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("missing CA file: %v; want fs.ErrNotExist naming kafka.tls.ca_file, without the password", err)
	}
	bad := ClusterConfig{Brokers: []string{"b:9092"}, SASL: SASLConfig{Mechanism: "SCRAM-SHA-256", Password: "hunter2"}}
	if errs := bad.Validate("kafka"); len(errs) != 1 || strings.Contains(errs[0].Error(), "hunter2") {
		t.Errorf("SCRAM without user: %v; want one error, without the password", errs)
	}
}
