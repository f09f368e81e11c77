package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// kafka checks the brokers, their versions, every topic the publisher
// writes, and (exactly_once) that transactions work.
func (c *checker) kafka(ctx context.Context, rf *ruleFacts) {
	brokers := strings.Join(c.cfg.Kafka.Brokers, ",")
	opts, err := kafkaOpts(c.cfg)
	if err != nil {
		c.add("kafka config", Fail, err.Error(), "fix the setting")
		return
	}
	k := c.cfg.KafkaConfig()
	if issues := k.TransportIssues(); len(issues) > 0 {
		for _, is := range issues {
			c.add("kafka tls "+is.Broker, Warn, "kafka "+is.Broker+": "+is.Found, is.Fix)
		}
	} else {
		c.add("kafka tls "+brokers, OK, "TLS, certificates verified", "")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.add("kafka brokers "+brokers, Fail, err.Error(), "fix kafka.brokers (host:port)")
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		c.add("kafka brokers "+brokers, Fail, "unreachable: "+err.Error(),
			"check kafka.brokers, that the brokers run and are reachable from here, and kafka.tls / kafka.sasl")
		return
	}
	var addrs []string
	for _, b := range meta.Brokers {
		addrs = append(addrs, fmt.Sprintf("%d=%s:%d", b.NodeID, b.Host, b.Port))
	}
	c.add("kafka brokers "+brokers, OK, fmt.Sprintf("cluster %s: %d brokers (%s)", meta.Cluster, len(meta.Brokers), strings.Join(addrs, ", ")), "")

	if vs, err := adm.ApiVersions(ctx); err != nil {
		c.add("kafka broker versions", Warn, "not read: "+err.Error(), "nothing required")
	} else {
		var parts []string
		vs.Each(func(v kadm.BrokerApiVersions) {
			if v.Err != nil {
				parts = append(parts, fmt.Sprintf("broker %d: %v", v.NodeID, v.Err))
				return
			}
			parts = append(parts, fmt.Sprintf("broker %d: %s", v.NodeID, v.VersionGuess()))
		})
		sort.Strings(parts)
		c.add("kafka broker versions", OK, strings.Join(parts, "; "), "")
	}

	c.topics(ctx, adm, rf)
	c.kafkaACLs(ctx, adm, rf)
	if c.cfg.Delivery.Mode != "at_least_once" {
		c.transactions(ctx, opts)
	}
}

// topics checks the rules' topics, the dead-letter topic and the
// checkpoint topic.
func (c *checker) topics(ctx context.Context, adm *kadm.Client, rf *ruleFacts) {
	type want struct {
		topic, role string
	}
	var wants []want
	if rf.set != nil {
		for _, t := range rf.set.Topics() {
			wants = append(wants, want{t, "a rule's topic"})
		}
	} else {
		c.add("kafka topics of the rules", Warn, "not checked: the rules do not load", "fix the rules (see the rules lines)")
	}
	wants = append(wants, want{c.cfg.DeadLetter.Topic, "the dead-letter topic"}, want{c.cfg.Delivery.CheckpointTopic, "the checkpoint topic"})
	names := make([]string, len(wants))
	for i, w := range wants {
		names[i] = w.topic
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		c.add("kafka topics", Fail, "listing "+strings.Join(names, ", ")+": "+err.Error(), "check that the principal may describe topics")
		return
	}
	seen := map[string]bool{}
	for _, w := range wants {
		if seen[w.topic] {
			continue
		}
		seen[w.topic] = true
		name := "kafka topic " + w.topic
		d, ok := details[w.topic]
		if ok && d.Err == nil {
			found := fmt.Sprintf("exists (%s), %d partitions", w.role, len(d.Partitions))
			if w.topic == c.cfg.Delivery.CheckpointTopic && len(d.Partitions) != 1 {
				c.add(name, Warn, found+"; the checkpoint is written to and read from partition 0 only",
					"nothing required; a checkpoint topic needs 1 partition, cleanup.policy=compact")
				continue
			}
			c.add(name, OK, found, "")
			continue
		}
		if ok && d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			c.add(name, Fail, fmt.Sprintf("%s: %v", w.role, d.Err), "check the principal's ACLs on the topic (DESCRIBE, WRITE)")
			continue
		}
		// Missing. The checkpoint topic is always created by the publisher
		// (1 partition, compacted); the others only with create_topics.
		creates := c.cfg.Kafka.CreateTopics || w.topic == c.cfg.Delivery.CheckpointTopic
		partitions, rf := c.cfg.Kafka.Partitions, c.cfg.Kafka.ReplicationFactor
		if w.topic == c.cfg.Delivery.CheckpointTopic {
			partitions = 1
		}
		if !creates {
			c.add(name, Fail, "missing ("+w.role+")",
				fmt.Sprintf("create it, or set kafka.create_topics: true (e.g. kafka-topics.sh --create --topic %s --partitions %d)", w.topic, partitions))
			continue
		}
		resp, err := adm.ValidateCreateTopics(ctx, partitions, rf, nil, w.topic)
		if err == nil {
			var r kadm.CreateTopicResponse
			r, err = resp.On(w.topic, nil)
			if err == nil {
				err = r.Err
			}
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			c.add(name, Fail, fmt.Sprintf("missing (%s), and the principal may not create it: %v", w.role, err),
				"create it yourself, or grant the principal CREATE on the cluster or topic")
			continue
		}
		c.add(name, OK, fmt.Sprintf("missing (%s): chronicler run creates it (%d partitions; creation validated)", w.role, partitions), "")
	}
}

// transactions probes transaction support with a throwaway transactional
// id: init a producer id, begin and end an empty transaction. The
// publisher's own transactional id is never used, so the running publisher
// is not fenced.
func (c *checker) transactions(ctx context.Context, base []kgo.Opt) {
	id := kafka.ProbeTransactionalID(c.cfg.PublisherID(), os.Getpid())
	name := "kafka transactions"
	fix := "set delivery.mode: at_least_once, or enable transactions on the cluster (transaction.state.log.* settings, and the principal's WRITE on the transactional id)"
	txACL := kafka.ACL{Resource: "transactional-id", Name: kafka.TransactionalID(c.cfg.PublisherID()), Prefixed: true, Operation: "Write"}
	cl, err := kgo.NewClient(append(base, kgo.TransactionalID(id))...)
	if err != nil {
		c.add(name, Fail, err.Error(), fix)
		return
	}
	defer cl.Close()
	if _, _, err := cl.ProducerID(ctx); err != nil {
		if errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
			c.add("kafka acl "+txACL.String(), Fail, fmt.Sprintf("%s: missing (probed with transactional id %s): the publisher's transactions need it", c.kafkaPrincipal(), id), c.aclFix(txACL))
			return
		}
		c.add(name, Fail, fmt.Sprintf("initialising transactional id %s failed: %v", id, err), fix)
		return
	}
	if err := cl.BeginTransaction(); err != nil {
		c.add(name, Fail, "begin: "+err.Error(), fix)
		return
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		c.add(name, Fail, "end: "+err.Error(), fix)
		return
	}
	c.add(name, OK, "supported (probed with transactional id "+id+"; delivery.mode exactly_once)", "")
}
