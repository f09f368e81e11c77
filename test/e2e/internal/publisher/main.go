// Command publisher runs one publish.Publisher as a process, for the chaos
// tests in test/e2e that kill it with SIGKILL (`chronicler run --only
// publish` will replace it). Test-only.
//
// Exit codes: 0 after SIGINT/SIGTERM, 1 when Run fails, 2 on bad flags or
// configuration.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

func main() {
	var (
		storeURL   = flag.String("store", "", "KurrentDB connection string")
		brokers    = flag.String("brokers", "", "Kafka brokers, comma-separated")
		rules      = flag.String("rules", "", "rule file or directory")
		id         = flag.String("id", "", "publisher id")
		cpTopic    = flag.String("checkpoint-topic", "", "checkpoint topic")
		deadTopic  = flag.String("dead-letter-topic", "", "dead-letter topic")
		mode       = flag.String("mode", "exactly-once", "exactly-once or at-least-once")
		batch      = flag.Int("batch", 500, "records per transaction")
		interval   = flag.Duration("interval", 50*time.Millisecond, "batch interval")
		partitions = flag.Int("partitions", 3, "partitions of created topics")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	rs, err := mapping.Load([]string{*rules}, mapping.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	db, err := store.Connect(store.ClientConfig{URL: *storeURL})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	m := kafka.ExactlyOnce
	if *mode == "at-least-once" {
		m = kafka.AtLeastOnce
	}
	p, err := publish.New(publish.Config{
		Store: db, Rules: rs, PublisherID: *id, Mode: m, CheckpointTopic: *cpTopic, DeadLetterTopic: *deadTopic,
		Kafka:        kafka.ClusterConfig{Brokers: strings.Split(*brokers, ","), CreateTopics: true, Partitions: int32(*partitions), ReplicationFactor: 1},
		BatchRecords: *batch, BatchInterval: *interval, Logger: log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.Run(ctx); err != nil {
		log.Error("publisher stopped", "err", err)
		os.Exit(1)
	}
}
