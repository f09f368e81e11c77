package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker is a real single-node Apache Kafka broker (KRaft, combined broker
// and controller) on random free ports of 127.0.0.1.
type Broker struct {
	Addr string // bootstrap address, host:port

	root, logPath string
	who           *runAs
	java, libDir  string
	proc          *proc
	sec           *brokerSecurity // nil: plaintext, no authorizer
}

// StartKafkaBroker starts a dedicated broker for the test (use it when the
// test stops or restarts the broker) and registers its teardown.
func StartKafkaBroker(t testing.TB) *Broker {
	t.Helper()
	b, err := NewBroker(t.Logf)
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// NewBroker formats a fresh KRaft log directory and starts a broker on it.
// Close stops it and removes the directory.
func NewBroker(logf func(string, ...any)) (*Broker, error) { return newBroker(logf, nil) }

func newBroker(logf func(string, ...any), sec *KafkaSecurity) (*Broker, error) {
	libDir, err := EnsureKafka(logf)
	if err != nil {
		return nil, err
	}
	java, err := javaBin()
	if err != nil {
		return nil, err
	}
	who, err := unprivileged()
	if err != nil {
		return nil, err
	}
	root, err := mkdirFor(who, "chronicler-kafka-")
	if err != nil {
		return nil, fmt.Errorf("creating the broker directory: %w", err)
	}
	b := &Broker{root: root, who: who, java: java, libDir: libDir, logPath: filepath.Join(root, "kafka.log")}
	if sec != nil {
		if b.sec, err = b.prepareSecure(*sec); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		err = b.configure()
		if err == nil {
			err = b.Start()
		}
		if err == nil || attempt == 2 || !strings.Contains(tail(b.logPath, 40), "Address already in use") {
			break
		}
		b.proc.kill()
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Broker) configure() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	ctrl, err := freePort()
	if err != nil {
		return err
	}
	b.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	lines := []string{
		"process.roles=broker,controller",
		"node.id=1",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", ctrl),
		fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://127.0.0.1:%d", b.Addr, ctrl),
		"advertised.listeners=PLAINTEXT://" + b.Addr,
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name=PLAINTEXT",
		"log.dirs=" + filepath.Join(b.root, "data"),
		"num.partitions=1",
		// One node: every internal topic has one replica, and few partitions
		// so the first transaction and the first group join are quick.
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=4",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=4",
		"group.initial.rebalance.delay.ms=0",
		"auto.create.topics.enable=true",
		"log.flush.interval.messages=9223372036854775807",
	}
	var format []string
	if b.sec != nil {
		var err error
		if lines, format, err = b.sec.configure(b, lines, ctrl); err != nil {
			return err
		}
	}
	props := strings.Join(append(lines, ""), "\n")
	log4j := strings.Join([]string{
		"log4j.rootLogger=WARN, stdout",
		"log4j.logger.kafka.server.KafkaRaftServer=INFO",
		"log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
		"log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
		"log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
		"",
	}, "\n")
	for name, body := range map[string]string{"server.properties": props, "log4j.properties": log4j} {
		if err := os.WriteFile(filepath.Join(b.root, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	// Format the log directory (KRaft needs a cluster id and metadata
	// version before the first start). A retry on a new port reformats.
	os.RemoveAll(filepath.Join(b.root, "data"))
	cmd, logf, err := command(b.who, filepath.Join(b.root, "format.log"), b.java, b.javaArgs("kafka.tools.StorageTool",
		append([]string{"format", "-t", "Y2hyb25pY2xlci10ZXN0cw", "-c", filepath.Join(b.root, "server.properties")}, format...)...)...)
	if err != nil {
		return err
	}
	defer logf.Close()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kafka.tools.StorageTool format failed: %w\n%s", err, tail(filepath.Join(b.root, "format.log"), 30))
	}
	return nil
}

// javaArgs is the broker's JVM command line. The collector is the one
// Kafka's own start scripts give a broker (G1, a 20 ms pause goal,
// concurrent cycles from 35% occupancy): with the Serial collector these
// tests first used, the broker paused 30-70 ms for each young collection,
// about every 8 s at 1,000 tx/s, and the commit in flight waited, which
// was most of test/bench's latency tail (its README has the runs). The
// JIT stops at C1, which starts and warms quickly on 2 CPUs.
func (b *Broker) javaArgs(main string, args ...string) []string {
	jvm := []string{
		"-Xms256m", "-Xmx768m",
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
		"-XX:TieredStopAtLevel=1",
		"-Djava.awt.headless=true",
		"-Dlog4j.configuration=file:" + filepath.Join(b.root, "log4j.properties"),
		"-cp", javaClasspath(b.libDir), main,
	}
	return append(jvm, args...)
}

// Start starts the broker on its log directory (after Stop or Kill this
// restarts the same broker on the same ports) and waits until it answers a
// Metadata request naming itself.
func (b *Broker) Start() error {
	if b.proc != nil && !b.proc.exited() {
		return errors.New("the Kafka broker is already running")
	}
	cmd, logf, err := command(b.who, b.logPath, b.java, b.javaArgs("kafka.Kafka", filepath.Join(b.root, "server.properties"))...)
	if err != nil {
		return err
	}
	if b.proc, err = startProc(cmd, logf); err != nil {
		return err
	}
	return b.waitReady(90 * time.Second)
}

func (b *Broker) waitReady(limit time.Duration) error {
	cl, err := kgo.NewClient(append(b.ClientOpts(), kgo.RetryTimeout(time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if b.proc.exited() {
			return fmt.Errorf("the Kafka broker exited during start-up (%v); log tail:\n%s", b.proc.err, tail(b.logPath, 40))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		cancel()
		switch {
		case err != nil:
			last = err
		case len(resp.Brokers) == 0:
			last = errors.New("metadata names no broker yet")
		default:
			return nil
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not a wait for readiness
	}
	return fmt.Errorf("the Kafka broker did not answer a Metadata request on %s within %s (last error: %v); log tail:\n%s",
		b.Addr, limit, last, tail(b.logPath, 40))
}

// Stop shuts the broker down cleanly (SIGTERM) and waits for it.
func (b *Broker) Stop() { b.proc.stop(syscall.SIGTERM, 60*time.Second) }

// Kill kills the broker with SIGKILL.
func (b *Broker) Kill() { b.proc.kill() }

// Close stops the broker and removes its directory. It is idempotent.
func (b *Broker) Close() error {
	if b.proc != nil {
		b.proc.stop(syscall.SIGTERM, 20*time.Second)
	}
	if b.root != "" {
		err := os.RemoveAll(b.root)
		b.root = ""
		return err
	}
	return nil
}

// LogTail returns the last n lines of the broker's log.
func (b *Broker) LogTail(n int) string { return tail(b.logPath, n) }

// Kafka is the cluster a test talks to: a real broker or kfake.
type Kafka struct {
	Brokers []string
	Kind    string // "real" or "kfake"
	// Broker is set when this test owns a dedicated real broker.
	Broker *Broker
	// Fake is set for kfake.
	Fake *kfake.Cluster
	// Opts reach a secure broker as its super-user (TLS and SASL); nil
	// for a plaintext one. Client adds them.
	Opts []kgo.Opt
}

// StartKafka returns the cluster selected by CHRONICLER_TEST_KAFKA ("real",
// the default, or "kfake"). For real, it uses the shared broker named by
// CHRONICLER_TEST_KAFKA_BROKERS when set, else starts a dedicated one. Tests
// sharing a broker must use unique topic names and transactional ids.
func StartKafka(t testing.TB) *Kafka {
	t.Helper()
	switch kind := os.Getenv("CHRONICLER_TEST_KAFKA"); kind {
	case "", "real":
		return StartRealKafka(t)
	case "kfake":
		return StartKFake(t)
	default:
		t.Fatalf("stack: CHRONICLER_TEST_KAFKA=%q: want real or kfake", kind)
		return nil
	}
}

// StartRealKafka returns a real Apache Kafka broker whatever
// CHRONICLER_TEST_KAFKA says: the shared one named by
// CHRONICLER_TEST_KAFKA_BROKERS when set, else a dedicated one. For tests of
// what kfake models differently (deleting a topic while clients use it).
func StartRealKafka(t testing.TB) *Kafka {
	t.Helper()
	if addrs := os.Getenv("CHRONICLER_TEST_KAFKA_BROKERS"); addrs != "" {
		return &Kafka{Brokers: strings.Split(addrs, ","), Kind: "real"}
	}
	b := StartKafkaBroker(t)
	return &Kafka{Brokers: []string{b.Addr}, Kind: "real", Broker: b}
}

// StartKFake starts franz-go's in-process kfake cluster (one broker, topics
// auto-created) for the test.
func StartKFake(t testing.TB, opts ...kfake.Opt) *Kafka {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatalf("stack: starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Kafka{Brokers: c.ListenAddrs(), Kind: "kfake", Fake: c}
}

// Client returns a franz-go client seeded with the cluster's brokers, closed
// by the test's cleanup.
func (k *Kafka) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, k.Opts...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("stack: kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}
