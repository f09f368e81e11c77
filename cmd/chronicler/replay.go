package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// newReplayCmd is `chronicler replay`: re-derive one promotion rule's
// integration events from stored history into a topic.
func newReplayCmd() *cobra.Command {
	var (
		rules                  []string
		storeURL, from, topic  string
		promotion, brokers     string
		compression            string
		createTopics           bool
		partitions             int32
		replication            int16
		saslMechanism, saslUsr string
	)
	cmd := &cobra.Command{
		Use:   "replay --promotion NAME --from start|POSITION|RFC3339 [--topic T]",
		Short: "Re-derive one promotion rule's integration events from stored history into a topic",
		Long: "Replay reads the store's $all from the start, applies one promotion rule, and produces the\n" +
			"integration events of the range (after --from) into --topic (default: the rule's own topic),\n" +
			"with the same keys, values and CloudEvents headers as the live publisher. It uses its own\n" +
			"idempotent producer (at least once) and never touches a publisher's checkpoint.\n\n" +
			"Environment: CHRONICLER_STORE_URL, CHRONICLER_KAFKA_BROKERS, CHRONICLER_RULES (comma-separated),\n" +
			"CHRONICLER_KAFKA_SASL_PASSWORD / CHRONICLER_KAFKA_SASL_TOKEN (secrets are read only from the environment).",
		Example: "  chronicler replay --rules rules/ --store 'esdb://localhost:2113?tls=false' --brokers localhost:9092 \\\n" +
			"      --promotion order-placed --from start --topic shop.orders.replay\n" +
			"  chronicler replay --rules rules/ --promotion order-placed --from 2026-11-01T00:00:00Z   # store and brokers from CHRONICLER_*",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(rules) == 0 && os.Getenv("CHRONICLER_RULES") != "" {
				rules = strings.Split(os.Getenv("CHRONICLER_RULES"), ",")
			}
			if storeURL == "" {
				storeURL = os.Getenv("CHRONICLER_STORE_URL")
			}
			if brokers == "" {
				brokers = os.Getenv("CHRONICLER_KAFKA_BROKERS")
			}
			var problems []string
			if len(rules) == 0 {
				problems = append(problems, "--rules (or CHRONICLER_RULES): the rule files or directories are required")
			}
			if storeURL == "" {
				problems = append(problems, "--store (or CHRONICLER_STORE_URL): the KurrentDB connection string is required")
			}
			if promotion == "" {
				problems = append(problems, "--promotion: the promotion rule to replay is required")
			}
			rf, err := publish.ParseReplayFrom(from)
			if err != nil {
				problems = append(problems, err.Error())
			}
			if len(problems) > 0 {
				for _, p := range problems {
					fmt.Fprintln(cmd.ErrOrStderr(), p)
				}
				return exitError(2)
			}
			rs, err := mapping.Load(rules, mapping.Options{})
			if err != nil {
				return printProblems(cmd, err)
			}
			db, err := store.Connect(store.ClientConfig{URL: storeURL})
			if err != nil {
				return fmt.Errorf("--store: %w", err)
			}
			defer db.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			var bl []string
			if brokers != "" {
				bl = strings.Split(brokers, ",")
			}
			st, err := publish.Replay(ctx, publish.ReplayConfig{
				Store: db, Rules: rs, Promotion: promotion, From: rf, Topic: topic,
				Kafka: kafka.ClusterConfig{
					Brokers: bl, Compression: compression, CreateTopics: createTopics, Partitions: partitions, ReplicationFactor: replication,
					SASL: kafka.SASLConfig{Mechanism: saslMechanism, User: saslUsr, Password: os.Getenv("CHRONICLER_KAFKA_SASL_PASSWORD"), Token: os.Getenv("CHRONICLER_KAFKA_SASL_TOKEN")},
				},
				Progress: func(s publish.ReplayStats) {
					fmt.Fprintf(out, "replay: %d events read (position %d of %d), %d records, %d failed\n", s.Events, s.Position, s.End, s.Records, s.DeadLetters)
				},
			})
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("replay interrupted after %d records (position %d): run it again; duplicates carry equal ce_id: %w", st.Records, st.Position, context.Cause(ctx))
				}
				return err
			}
			fmt.Fprintf(out, "replay done: %d records from %d events into %s\n", st.Records, st.Events, orDefault(topic, "the rule's topic"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&rules, "rules", nil, "rule files or directories")
	f.StringVar(&storeURL, "store", "", "KurrentDB connection string (esdb://host:port?tls=false)")
	f.StringVar(&brokers, "brokers", "", "Kafka seed brokers, comma-separated host:port")
	f.StringVar(&promotion, "promotion", "", "the promotion rule to replay")
	f.StringVar(&from, "from", "start", "start, a $all commit position (exclusive), or an RFC 3339 time (events stored at or after it)")
	f.StringVar(&topic, "topic", "", "target topic (default: the rule's topic)")
	f.StringVar(&compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	f.BoolVar(&createTopics, "create-topics", false, "create the target topic if missing")
	f.Int32Var(&partitions, "partitions", 1, "partitions of a created topic")
	f.Int16Var(&replication, "replication-factor", -1, "replication factor of a created topic (-1: the broker's default)")
	f.StringVar(&saslMechanism, "sasl-mechanism", "", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
	f.StringVar(&saslUsr, "sasl-user", "", "SASL user (password from CHRONICLER_KAFKA_SASL_PASSWORD)")
	return cmd
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
