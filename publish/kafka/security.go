package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

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

// ACL is one permission the publisher's principal needs on a secured
// cluster, in kafka-acls terms. Kafka's WRITE and READ imply DESCRIBE, and
// since Kafka 2.8 WRITE on a topic implies IDEMPOTENT_WRITE on the cluster
// (KIP-679), so neither is listed.
type ACL struct {
	Resource  string // "topic", "transactional-id", "cluster"
	Name      string // the topic or id ("" for the cluster)
	Prefixed  bool   // a prefixed resource pattern
	Operation string // "Write", "Read", "Create"
	Why       string
}

func (a ACL) String() string {
	s := a.Operation + " on " + a.Resource
	if a.Name != "" {
		s += " " + a.Name
	}
	if a.Prefixed {
		s += " (prefixed)"
	}
	return s
}

// Command is the kafka-acls command line that grants a to principal
// ("User:name").
func (a ACL) Command(bootstrap, principal string) string {
	s := fmt.Sprintf("kafka-acls.sh --bootstrap-server %s --add --allow-principal %s --operation %s", bootstrap, principal, a.Operation)
	switch a.Resource {
	case "cluster":
		s += " --cluster"
	default:
		s += fmt.Sprintf(" --%s %s", a.Resource, a.Name)
	}
	if a.Prefixed {
		s += " --resource-pattern-type prefixed"
	}
	return s
}

// ProbeTransactionalID is the transactional id `chronicler check` probes
// transactions with: under the publisher's own (TransactionalID), so the
// prefixed ACL RequiredACLs lists covers it, and never equal to it, so the
// running publisher is not fenced.
func ProbeTransactionalID(publisherID string, pid int) string {
	return fmt.Sprintf("%s.check-%d", TransactionalID(publisherID), pid)
}

// RequiredACLs are the permissions the publisher needs: WRITE on every
// topic it produces to (the rules' and the dead-letter topic), READ and
// WRITE on the checkpoint topic, with exactlyOnce WRITE on its
// transactional id (prefixed, so `chronicler check` can probe under it),
// and with createTopics CREATE on the cluster (the checkpoint topic is
// created by the publisher when missing: CREATE on it then, or create it
// beforehand).
func RequiredACLs(topics []string, deadLetterTopic, checkpointTopic, publisherID string, exactlyOnce, createTopics bool) []ACL {
	var out []ACL
	seen := map[string]bool{}
	for _, t := range append(append([]string(nil), topics...), deadLetterTopic) {
		if seen[t] || t == checkpointTopic {
			continue
		}
		seen[t] = true
		why := "the publisher produces integration events to it"
		if t == deadLetterTopic {
			why = "the publisher produces dead letters to it"
		}
		out = append(out, ACL{Resource: "topic", Name: t, Operation: "Write", Why: why})
	}
	out = append(out,
		ACL{Resource: "topic", Name: checkpointTopic, Operation: "Read", Why: "the publisher reads its checkpoint back at start"},
		ACL{Resource: "topic", Name: checkpointTopic, Operation: "Write", Why: "the publisher commits its checkpoint with every batch"})
	if exactlyOnce {
		out = append(out, ACL{Resource: "transactional-id", Name: TransactionalID(publisherID), Prefixed: true, Operation: "Write",
			Why: "exactly_once: the publisher's transactions (and check's probe under the same prefix)"})
	}
	if createTopics {
		out = append(out, ACL{Resource: "cluster", Operation: "Create", Why: "kafka.create_topics: the publisher creates missing topics"})
	}
	return out
}

// Grant is what a broker says about one ACL of the principal a client
// authenticates as ([ProbeACLs]).
type Grant int

const (
	// GrantUnknown: the answer does not say (ACLGrant.Err tells why: no
	// broker answered, a broker before Kafka 2.3 reports no operations).
	GrantUnknown Grant = iota
	// Granted: the topic's authorized operations include the ACL's.
	Granted
	// NotGranted: the topic's authorized operations lack the ACL's.
	NotGranted
	// Undescribable: the principal may not even describe the topic
	// (TOPIC_AUTHORIZATION_FAILED), so it has none of its operations (READ
	// and WRITE imply DESCRIBE).
	Undescribable
	// NoTopic: the topic does not exist, so it has no operations to read.
	NoTopic
)

// ACLGrant is one ACL and what the broker says of it.
type ACLGrant struct {
	ACL
	Grant Grant
	Err   error // why, with GrantUnknown; the broker's error, with Undescribable
}

// ProbeACLs reads whether the principal adm authenticates as holds each
// topic ACL of need, in need's order, from what a principal without the
// right to read ACLs may read: the topics' authorized operations in a
// Metadata response (KIP-430), one request per topic. ACLs on other
// resources are left out: the transactional id is probed by initialising
// a producer under ProbeTransactionalID, CREATE on the cluster by
// validating a topic creation.
func ProbeACLs(ctx context.Context, adm *kadm.Client, need []ACL) []ACLGrant {
	type answer struct {
		ops []kadm.ACLOperation
		err error
	}
	answers := map[string]answer{}
	var out []ACLGrant
	for _, a := range need {
		if a.Resource != "topic" {
			continue
		}
		ans, ok := answers[a.Name]
		if !ok {
			ans.ops, ans.err = topicOps(ctx, adm, a.Name)
			answers[a.Name] = ans
		}
		g := ACLGrant{ACL: a, Err: ans.err}
		switch {
		case errors.Is(ans.err, kerr.TopicAuthorizationFailed):
			g.Grant = Undescribable
		case errors.Is(ans.err, kerr.UnknownTopicOrPartition):
			g.Grant, g.Err = NoTopic, nil
		case ans.err != nil:
			g.Grant = GrantUnknown
		case slices.Contains(ans.ops, aclOp(a.Operation)):
			g.Grant = Granted
		default:
			g.Grant = NotGranted
		}
		out = append(out, g)
	}
	return out
}

// topicOps is the principal's authorized operations on topic, as the
// Metadata response reports them.
func topicOps(ctx context.Context, adm *kadm.Client, topic string) ([]kadm.ACLOperation, error) {
	m, err := adm.Metadata(kadm.WithAuthorizedOps(ctx), topic)
	if err != nil {
		return nil, err
	}
	d := m.Topics[topic]
	if d.Err != nil {
		return nil, d.Err
	}
	if len(d.AuthorizedOperations) == 0 {
		return nil, errors.New("the broker reports no authorized operations (a broker before Kafka 2.3)")
	}
	return d.AuthorizedOperations, nil
}

// aclOp is the kadm operation of an ACL's Operation.
func aclOp(op string) kadm.ACLOperation {
	switch op {
	case "Read":
		return kadm.OpRead
	case "Create":
		return kadm.OpCreate
	}
	return kadm.OpWrite
}
