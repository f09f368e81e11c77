package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// EnsureTopics checks that every topic exists, creating missing ones when
// k.CreateTopics says so. Every problem is reported, each a *TopicError.
func EnsureTopics(ctx context.Context, adm *kadm.Client, k *ClusterConfig, topics []string) error {
	sort.Strings(topics)
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("listing kafka topics %v: %w", topics, err)
	}
	var errs []error
	for _, t := range topics {
		d, ok := details[t]
		if ok && d.Err == nil {
			continue
		}
		if !k.CreateTopics {
			cause := error(kerr.UnknownTopicOrPartition)
			if ok && d.Err != nil {
				cause = d.Err
			}
			errs = append(errs, &TopicError{Topic: t, Cause: cause})
			continue
		}
		resp, err := adm.CreateTopic(ctx, k.Partitions, k.ReplicationFactor, nil, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, &TopicError{Topic: t, Cause: err})
		}
	}
	return errors.Join(errs...)
}

// TopicError reports an integration or dead-letter topic that is missing
// (and CreateTopics is off) or could not be created.
type TopicError struct {
	Topic string
	Cause error
}

func (e *TopicError) Error() string {
	return fmt.Sprintf("kafka topic %s: %v (create it, or set kafka.create_topics with partitions and replication factor)", e.Topic, e.Cause)
}
func (e *TopicError) Unwrap() error { return e.Cause }
