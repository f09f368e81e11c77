package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// kafkaACLs probes the topic permissions the publisher needs
// (kafka.RequiredACLs) with what a non-admin principal may read: the
// topics' authorized operations in Metadata (KIP-430). A topic the
// principal may not even describe grants it none of them (READ and WRITE
// imply DESCRIBE). Each missing permission is a FAIL naming it with the
// kafka-acls command that grants it; one the broker does not report is a
// warning saying unknown, with the error. The transactional id is probed by
// the transactions check.
func (c *checker) kafkaACLs(ctx context.Context, adm *kadm.Client, rf *ruleFacts) {
	var topics []string
	if rf.set != nil {
		topics = rf.set.Topics()
	}
	need := kafka.RequiredACLs(topics, c.cfg.DeadLetter.Topic, c.cfg.Delivery.CheckpointTopic, c.cfg.PublisherID(),
		c.cfg.Delivery.Mode != "at_least_once", c.cfg.Kafka.CreateTopics)
	type answer struct {
		ops []kadm.ACLOperation
		err error // nil, an authorization error, or why the operations are unknown
	}
	answers := map[string]answer{}
	var granted []string
	for _, a := range need {
		if a.Resource != "topic" {
			continue
		}
		ans, ok := answers[a.Name]
		if !ok {
			m, err := adm.Metadata(kadm.WithAuthorizedOps(ctx), a.Name)
			switch {
			case err != nil:
				ans.err = err
			case m.Topics[a.Name].Err != nil && !errors.Is(m.Topics[a.Name].Err, kerr.UnknownTopicOrPartition):
				ans.err = m.Topics[a.Name].Err
			case m.Topics[a.Name].Err != nil:
				// Missing: the topic check reports it; a missing topic has
				// no operations to read.
				ans.err = errMissingTopic
			default:
				ans.ops = m.Topics[a.Name].AuthorizedOperations
				if len(ans.ops) == 0 {
					ans.err = errors.New("the broker reports no authorized operations (a broker before Kafka 2.3)")
				}
			}
			answers[a.Name] = ans
		}
		name := "kafka acl " + a.String()
		switch {
		case errors.Is(ans.err, kerr.TopicAuthorizationFailed):
			c.add(name, Fail, fmt.Sprintf("%s: missing (the principal may not even describe topic %s): %s", c.kafkaPrincipal(), a.Name, a.Why), c.aclFix(a))
		case errors.Is(ans.err, errMissingTopic):
			// Not readable until the topic exists; the topic check says more.
		case ans.err != nil:
			c.add(name, Warn, "unknown: "+ans.err.Error(), "make sure the principal has it: "+c.aclFix(a))
		case !slices.Contains(ans.ops, opOf(a.Operation)):
			c.add(name, Fail, fmt.Sprintf("%s: missing: %s", c.kafkaPrincipal(), a.Why), c.aclFix(a))
		default:
			granted = append(granted, a.String())
		}
	}
	if len(granted) > 0 {
		c.add("kafka acls", OK, c.kafkaPrincipal()+" has "+strings.Join(granted, ", "), "")
	}
}

var errMissingTopic = errors.New("topic missing")

func opOf(op string) kadm.ACLOperation {
	switch op {
	case "Read":
		return kadm.OpRead
	case "Create":
		return kadm.OpCreate
	}
	return kadm.OpWrite
}

// kafkaPrincipal is the principal Chronicler authenticates as, as ACLs name
// it.
func (c *checker) kafkaPrincipal() string {
	if u := c.cfg.Kafka.SASL.Username; u != "" && c.cfg.Kafka.SASL.Mechanism != "" && !strings.EqualFold(c.cfg.Kafka.SASL.Mechanism, "OAUTHBEARER") {
		return "User:" + u
	}
	return "User:<chronicler's principal>"
}

func (c *checker) aclFix(a kafka.ACL) string {
	return a.Command(c.cfg.Kafka.Brokers[0], c.kafkaPrincipal())
}
