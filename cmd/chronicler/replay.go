package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish"
)

// replayFlags are replay's own flags; the rest comes from the configuration.
type replayFlags struct {
	file, promotion, from, topic string
	createTopics                 bool
}

// newReplayCmd is `chronicler replay`: re-derive one promotion rule's
// integration events from stored history into a topic.
func newReplayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay [--config FILE] --promotion NAME [--from start|POSITION|RFC3339] [--topic T]",
		Short: "Re-derive one promotion rule's integration events from stored history into a topic",
		Long: "Replay reads the store's $all from the start, applies one promotion rule, and produces the\n" +
			"integration events of the range (after --from) into --topic (default: the rule's own topic),\n" +
			"with the same keys, values and CloudEvents headers as the live publisher. It uses its own\n" +
			"idempotent producer (at least once) and never touches a publisher's checkpoint.\n\n" +
			"It reads the configuration run reads (--config, default ./chronicler.yaml, and CHRONICLER_*\n" +
			"variables): store.url and its credentials, kafka.* with its TLS and SASL settings, rules.paths,\n" +
			"and kafka.schema_registry (values of rules with a schema are framed with its id, as run does).\n\n" +
			"Exit codes: 0 done; 1 the replay failed (store or Kafka unreachable, a topic missing, a rule\n" +
			"failing to load); 2 invalid flags or config.",
		Example: "  chronicler replay --config chronicler.yaml --promotion order-placed --from start --topic shop.orders.replay\n" +
			"  chronicler replay --promotion order-placed --from 2026-11-01T00:00:00Z   # configuration from ./chronicler.yaml",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReplay(cmd, f) },
	}
	addConfigFlag(cmd, &f.file)
	fl := cmd.Flags()
	fl.StringVar(&f.promotion, "promotion", "", "the promotion rule to replay (required)")
	fl.StringVar(&f.from, "from", "start", "start, a $all commit position (exclusive), or an RFC 3339 time (events stored at or after it)")
	fl.StringVar(&f.topic, "topic", "", "target topic (default: the rule's topic)")
	fl.BoolVar(&f.createTopics, "create-topics", false, "create the target topic if missing (as kafka.create_topics, with kafka.partitions and kafka.replication_factor)")
	return cmd
}

func runReplay(cmd *cobra.Command, f replayFlags) error {
	rf, err := publish.ParseReplayFrom(f.from)
	if f.promotion == "" || err != nil {
		if f.promotion == "" {
			fmt.Fprintln(cmd.ErrOrStderr(), "replay: --promotion: the promotion rule to replay is required")
		}
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "replay:", err)
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "run 'chronicler replay --help' for usage")
		return exitError(2)
	}
	cfg, _, err := loadConfig(cmd, f.file, "publish")
	if err != nil {
		return err
	}
	rs, err := mapping.Load(cfg.Rules.Paths, mapping.Options{})
	if err != nil {
		return printProblems(cmd, err)
	}
	reg, err := cfg.Registry()
	if err != nil {
		return replayFailed(cmd, err)
	}
	db, err := store.Connect(cfg.StoreClient())
	if err != nil {
		return replayFailed(cmd, err)
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := cmd.OutOrStdout()
	rc := replayConfig(cfg, db, rs, f, rf, func(s publish.ReplayStats) {
		fmt.Fprintf(out, "replay: %d events read (position %d of %d), %d records, %d failed\n", s.Events, s.Position, s.End, s.Records, s.DeadLetters)
	})
	rc.Registry = reg
	st, err := publish.Replay(ctx, rc)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("replay interrupted after %d records (position %d): run it again; duplicates carry equal ce_id: %w", st.Records, st.Position, context.Cause(ctx))
		}
		return replayFailed(cmd, err)
	}
	fmt.Fprintf(out, "replay done: %d records from %d events into %s\n", st.Records, st.Events, orDefault(f.topic, "the rule's topic"))
	return nil
}

func replayConfig(cfg *config.Config, db *store.Client, rs *mapping.RuleSet, f replayFlags, rf publish.ReplayFrom, progress func(publish.ReplayStats)) publish.ReplayConfig {
	k := cfg.KafkaConfig()
	k.CreateTopics = k.CreateTopics || f.createTopics
	return publish.ReplayConfig{Store: db, Rules: rs, Promotion: f.promotion, From: rf, Topic: f.topic, Kafka: k, Progress: progress}
}

// replayFailed prints a runtime failure: exit 1, not the usage code.
func replayFailed(cmd *cobra.Command, err error) error {
	fmt.Fprintln(cmd.ErrOrStderr(), "error: replay:", err)
	return exitError(1)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
