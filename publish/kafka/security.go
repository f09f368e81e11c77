package kafka

import "fmt"

// TransportIssue is one way the configuration leaves the connection to a
// broker open to the network: plaintext, or a certificate not verified.
type TransportIssue struct {
	Broker string // host:port, as configured
	Found  string // "plaintext", "certificate not verified"
	Fix    string // the setting that fixes it
}

// TransportIssues are the issues of each seed broker's connection, as the
// configuration makes it (franz-go dials exactly so, or fails): none when
// TLS is on and verifies the certificate.
func (k *ClusterConfig) TransportIssues() []TransportIssue {
	var found, fix string
	switch {
	case !k.TLS.Enabled:
		found = "plaintext"
		if k.SASL.Mechanism != "" {
			found += fmt.Sprintf(" (SASL %s credentials and every record cross the network unencrypted)", k.SASL.Mechanism)
		}
		fix = "set kafka.tls.enabled: true (with kafka.tls.ca_file unless the system roots sign the brokers' certificates) and use the brokers' TLS listener"
	case k.TLS.InsecureSkipVerify:
		found = "TLS, certificate not verified (kafka.tls.insecure_skip_verify): anyone in the path can pose as the broker"
		fix = "unset kafka.tls.insecure_skip_verify and set kafka.tls.ca_file to the CA that signed the brokers' certificates"
	default:
		return nil
	}
	out := make([]TransportIssue, len(k.Brokers))
	for i, b := range k.Brokers {
		out[i] = TransportIssue{Broker: b, Found: found, Fix: fix}
	}
	return out
}
