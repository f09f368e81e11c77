package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
	"github.com/chronicler-dev/chronicler/test/workload"
)

// TestReplayCommandEqualsLivePublisher: the shop workload is captured into
// the store, the live publisher publishes it, then `chronicler replay` of
// one promotion rule into a new topic must yield the same records as the
// live publisher did for that rule: same keys, values and headers, in the
// same order (Kafka offsets aside).
func TestReplayCommandEqualsLivePublisher(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg := stack.StartPostgres(t)
	schema, err := os.ReadFile("../../deploy/examples/shop/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "postgres", string(schema))
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	k := stack.StartKafka(t)

	// The shop rules, with their contact topic renamed so runs sharing a
	// broker do not meet.
	suffix := fmt.Sprint(time.Now().UnixNano())
	liveTopic, replayTopic := "crm.customer-contact."+suffix, "replayed.customer-contact."+suffix
	rulesDir := t.TempDir()
	for _, name := range []string{"capture.yaml", "promote.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../deploy/examples/rules/shop", name))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("crm.customer-contact.v1"), []byte(liveTopic))
		b = bytes.ReplaceAll(b, []byte("shop.orders.v1"), []byte("shop.orders."+suffix))
		if err := os.WriteFile(filepath.Join(rulesDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	quiet := slog.New(slog.DiscardHandler)

	// Capture: Postgres → rules → store.
	reg := prometheus.NewRegistry()
	capCtx, stopCapture := context.WithCancel(ctx)
	capDone := make(chan error, 1)
	go func() {
		capDone <- capture.Run(capCtx, capture.Options{
			Postgres: postgres.Config{URL: pg.URL(), Slot: "replay_test", Publication: "chronicler",
				Tables: []string{"public.customers", "public.orders", "public.order_lines", "public.payments"}, HeartbeatInterval: time.Second},
			StoreURL: srv.URL(), RulePaths: []string{rulesDir}, Registerer: reg, Logger: quiet,
		})
	}()
	defer func() { stopCapture(); <-capDone }()
	waitUntil(t, ctx, "capture to stream", func() bool { return metric(reg, "chronicler_capture_confirmed_lsn_bytes") > 0 })
	shop, err := workload.NewShop(ctx, pg.URL(), 7)
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	for range 400 {
		if err := shop.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A logical message after the workload: its transaction commits after
	// every workload transaction, so a durable LSN at or past the message's
	// own LSN means the whole workload is in the store.
	var marker string
	if err := pg.Connect(t, "postgres").QueryRow(ctx, "SELECT pg_logical_emit_message(true, 'replay-test', 'end')::text").Scan(&marker); err != nil {
		t.Fatal(err)
	}
	markerLSN, err := contract.ParseLSN(marker)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the workload to be durable in the store", func() bool {
		return metric(reg, "chronicler_pipeline_durable_lsn_bytes") >= float64(markerLSN)
	})
	stopCapture()
	<-capDone
	capDone <- nil

	// The live publisher, until it has handled every stored event.
	rules, err := mapping.Load([]string{rulesDir}, mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	last := lastAllPosition(t, ctx, db)
	pub, err := publish.New(publish.Config{Store: kurrentdbtest.Store(t, srv.URL()), Rules: rules, PublisherID: "replay-test-" + suffix, Logger: quiet,
		Kafka: kafka.ClusterConfig{Brokers: k.Brokers, CreateTopics: true}})
	if err != nil {
		t.Fatal(err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Run(pubCtx) }()
	waitUntil(t, ctx, "the live publisher to catch up", func() bool { return pub.Stats().Through.Commit >= last })
	stopPub()
	if err := <-pubDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("live publisher: %v", err)
	}

	// The command under test.
	var stdout, stderr bytes.Buffer
	cfgFile := filepath.Join(t.TempDir(), "chronicler.yaml")
	cfgText := fmt.Sprintf("store:\n  url: %q\nkafka:\n  brokers: [%s]\nrules:\n  paths: [%q]\nha:\n  enabled: false\ndelivery:\n  publisher_id: replay\n", srv.URL(), strings.Join(k.Brokers, ", "), rulesDir)
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	code := run([]string{"replay", "--config", cfgFile, "--promotion", "customer-contact-changed", "--from", "start", "--topic", replayTopic, "--create-topics"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("chronicler replay exited %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}

	live := readTopic(t, ctx, k, liveTopic)
	replayed := readTopic(t, ctx, k, replayTopic)
	if len(live) == 0 {
		t.Fatal("the live publisher produced no customer-contact-changed record: the workload changed no email")
	}
	if !slices.Equal(live, replayed) {
		t.Fatalf("replay differs from live:\nlive (%d):\n%s\nreplayed (%d):\n%s", len(live), strings.Join(live, "\n"), len(replayed), strings.Join(replayed, "\n"))
	}
	t.Logf("figure: chronicler replay reproduced %d live records exactly", len(live))
}

func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
}

func metric(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// lastAllPosition is the commit position of the last event in $all.
func lastAllPosition(t *testing.T, ctx context.Context, db *esdb.Client) uint64 {
	t.Helper()
	rs, err := db.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return ev.OriginalEvent().Position.Commit
}

// readTopic reads every committed record of a one-partition topic, as
// "key | value | headers" lines.
func readTopic(t *testing.T, ctx context.Context, k *stack.Kafka, topic string) []string {
	t.Helper()
	cl := k.Client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []string
	idle := 0
	for idle < 3 {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			var hs []string
			for _, h := range r.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			out = append(out, fmt.Sprintf("%s | %s | %s", r.Key, r.Value, strings.Join(hs, " ")))
			n++
		})
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return out
}

// TestReplayRuntimeFailureExitsOne: with Kafka unreachable, replay fails
// with exit 1 (not the usage code 2) and names the failure, not the help.
func TestReplayRuntimeFailureExitsOne(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	if _, err := db.AppendToStream(context.Background(), "customer-1", esdb.AppendToStreamOptions{},
		esdb.EventData{EventType: "CustomerChanged", ContentType: esdb.ContentTypeJson, Data: []byte(`{"id":1}`)}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte("promote:\n  - name: c\n    from: [CustomerChanged]\n    topic: t\n    type: c.v1\n    value: {id: event.data.id}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "chronicler.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("store:\n  url: %q\nkafka:\n  brokers: [\"127.0.0.1:1\"]\nrules:\n  paths: [%q]\nha:\n  enabled: false\ndelivery:\n  publisher_id: replay\n", srv.URL(), rules)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"replay", "--config", cfg, "--promotion", "c"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "error: replay:") || strings.Contains(stderr.String(), "--help") {
		t.Fatalf("replay with Kafka unreachable: exit %d, stderr %q; want exit 1 naming the failure, without a usage hint", code, stderr.String())
	}
}
