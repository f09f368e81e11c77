package preflight

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

// kafkaOpts are the franz-go options of cfg's Kafka connection: seed
// brokers, TLS and SASL exactly as the publisher uses them, and nothing that
// produces.
func kafkaOpts(cfg *config.Config) ([]kgo.Opt, error) {
	k := cfg.KafkaConfig()
	opts, err := k.ClientOpts()
	if err != nil {
		return nil, &ConfigError{Setting: "kafka", Reason: err.Error()}
	}
	return opts, nil
}
