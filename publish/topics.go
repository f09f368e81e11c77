package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/goccy/go-yaml"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ensureTopics checks that every topic exists, creating missing ones when
// the configuration says so. Every problem is reported.
func ensureTopics(ctx context.Context, adm *kadm.Client, k *KafkaConfig, topics []string) error {
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

// ruleTopics returns the topics the promotion rules write to. The rule set
// does not list them, but a rule's topic is a literal string (checked by
// mapping.Load), so it is read from the rule files again.
func ruleTopics(files []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading rule file %s for its topics: %w", f, err)
		}
		var doc struct {
			Promote []struct {
				Topic string `yaml:"topic"`
			} `yaml:"promote"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("reading rule file %s for its topics: %w", f, err)
		}
		for _, p := range doc.Promote {
			if p.Topic != "" && !seen[p.Topic] {
				seen[p.Topic] = true
				out = append(out, p.Topic)
			}
		}
	}
	return out, nil
}
