package e2e

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/test/stack"
)

var updateMetrics = flag.Bool("update-metrics", false, "rewrite deploy/testdata/metrics.txt from a running instance")

// metricsFile lists the metric families a running `chronicler run` (both
// parts, after some traffic and a dead letter) exposes on /metrics: one
// "name type" line each. The Helm chart's tests check every metric its
// alert rules and Grafana dashboard name against it (the deploy module
// cannot start the product itself).
const metricsFile = "../../deploy/testdata/metrics.txt"

// TestMetricsReference runs `chronicler run` (capture and publish, HA on)
// against real Postgres, the store and Kafka, makes it capture, store,
// publish and dead-letter, then reads /metrics: the chronicler_* families
// must be exactly those of deploy/testdata/metrics.txt. After an intended
// change of the metrics:
//
//	CHRONICLER_TEST_PKGS=./test/e2e CHRONICLER_TEST_RUN=TestMetricsReference ./test/run.sh  (fails, shows the difference)
//	go test ./test/e2e -run TestMetricsReference -update-metrics  (with the stack's Kafka: see test/run.sh)
func TestMetricsReference(t *testing.T) {
	k := stack.StartKafka(t)
	e := newEnv(t)
	n := fmt.Sprintf("metrics-%d", time.Now().UnixNano())
	cfg := writeFullConfig(t, e, k, n)
	in := e.newInstance("a")
	e.startInstance(in, cfg)
	e.waitRole(in, "active", 60*time.Second)
	if err := e.workload(context.Background(), 200, 2); err != nil { // with "bad" history rows: capture dead letters
		t.Fatal(err)
	}
	e.waitCaughtUp(60 * time.Second)
	var got []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = families(t, in.http)
		if slices.Contains(got, "chronicler_pipeline_deadletters_total counter") && metric(t, in.http, "chronicler_publish_records_total", "") > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling, with a deadline
	}
	in.stop(t)
	text := strings.Join(got, "\n") + "\n"
	if *updateMetrics {
		if err := os.WriteFile(metricsFile, []byte("# chronicler_* metric families of a running `chronicler run` (both parts); written by\n# TestMetricsReference in test/e2e (-update-metrics), read by the chart's tests in deploy/.\n"+text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d families)", filepath.Clean(metricsFile), len(got))
	}
	b, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			want = append(want, l)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s lists %q; the running instance does not expose it", metricsFile, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("the running instance exposes %q; %s does not list it (run with -update-metrics)", g, metricsFile)
		}
	}
	t.Logf("figure: %d chronicler_* metric families on /metrics", len(got))
}

// families are the chronicler_* "# TYPE" lines of /metrics at addr, as
// "name type", sorted.
func families(t *testing.T, addr string) []string {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (chronicler_\S+) (\S+)$`).FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1]+" "+m[2])
	}
	slices.Sort(out)
	return out
}
