package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// kafkaACLs reports the topic permissions the publisher needs
// (kafka.RequiredACLs) as kafka.ProbeACLs reads them. Each missing
// permission is a FAIL naming it with the kafka-acls command that grants
// it; one the broker does not report is a warning saying unknown, with the
// error. The transactional id is probed by the transactions check.
func (c *checker) kafkaACLs(ctx context.Context, adm *kadm.Client, rf *ruleFacts) {
	var topics []string
	if rf.set != nil {
		topics = rf.set.Topics()
	}
	need := kafka.RequiredACLs(topics, c.cfg.DeadLetter.Topic, c.cfg.Delivery.CheckpointTopic, c.cfg.PublisherID(),
		c.cfg.Delivery.Mode != "at_least_once", c.cfg.Kafka.CreateTopics)
	var granted []string
	for _, g := range kafka.ProbeACLs(ctx, adm, need) {
		name := "kafka acl " + g.String()
		switch g.Grant {
		case kafka.Granted:
			granted = append(granted, g.String())
		case kafka.Undescribable:
			c.add(name, Fail, fmt.Sprintf("%s: missing (the principal may not even describe topic %s): %s", c.kafkaPrincipal(), g.Name, g.Why), c.aclFix(g.ACL))
		case kafka.NotGranted:
			c.add(name, Fail, fmt.Sprintf("%s: missing: %s", c.kafkaPrincipal(), g.Why), c.aclFix(g.ACL))
		case kafka.NoTopic:
			// Not readable until the topic exists; the topic check says more.
		default:
			c.add(name, Warn, "unknown: "+g.Err.Error(), "make sure the principal has it: "+c.aclFix(g.ACL))
		}
	}
	if len(granted) > 0 {
		c.add("kafka acls", OK, c.kafkaPrincipal()+" has "+strings.Join(granted, ", "), "")
	}
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
