package deploy

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestChartReadmeExamples: every code block in the chart README marked
// <!-- file: deploy/testdata/... --> is exactly that file, so the sidecar example
// the README shows is the one TestChartSidecar renders.
func TestChartReadmeExamples(t *testing.T) {
	readme := string(mustRead(t, filepath.Join(chartDir, "README.md")))
	marked := regexp.MustCompile("(?s)<!-- file: ([^ ]+) -->\n```[a-z]*\n(.*?)```")
	found := marked.FindAllStringSubmatch(readme, -1)
	if len(found) < 3 {
		t.Fatalf("%d marked examples in the chart README; want the legacy-app Chart.yaml, values.yaml and deployment", len(found))
	}
	for _, m := range found {
		file := strings.TrimPrefix(m[1], "deploy/") // the README names it from the repository root
		if got, want := m[2], string(mustRead(t, file)); got != want {
			t.Errorf("the README's %s differs from the file:\n%s", m[1], lineDiff(want, got))
		}
	}
}

// TestChartReadmeNamesThePaths: the chart README states each path the pod
// tests assert (config file, rules directory, secrets directory and files).
func TestChartReadmeNamesThePaths(t *testing.T) {
	readme := string(mustRead(t, filepath.Join(chartDir, "README.md")))
	for _, p := range []string{
		configPath, rulesDir, secretsDir + "/postgres/password", secretsDir + "/store/password",
		secretsDir + "/kafka-sasl/password", secretsDir + "/kafka-sasl/token", secretsDir + "/kafka-tls/ca.crt",
		secretsDir + "/kafka-tls/tls.crt", secretsDir + "/kafka-tls/tls.key",
	} {
		if !strings.Contains(readme, "`"+p) {
			t.Errorf("the chart README does not name %s", p)
		}
	}
}

// wholeValues are values the README describes as a whole (their sub-keys
// are Kubernetes or Chronicler fields, not chart settings).
var wholeValues = []string{"config", "resources", "podSecurityContext", "securityContext", "strategy", "grafanaDashboard.labels"}

// TestChartReadmeListsEveryValue: every value in values.yaml has a row in
// the chart README's values table, and every row names a real value.
func TestChartReadmeListsEveryValue(t *testing.T) {
	readme := string(mustRead(t, filepath.Join(chartDir, "README.md")))
	var vals map[string]any
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(chartDir, "values.yaml")), &vals); err != nil {
		t.Fatal(err)
	}
	var want []string
	var walk func(m map[string]any, prefix string)
	walk = func(m map[string]any, prefix string) {
		for k, v := range m {
			p := prefix + k
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !slices.Contains(wholeValues, p) {
				walk(sub, p+".")
				continue
			}
			want = append(want, p)
		}
	}
	walk(vals, "")
	slices.Sort(want)
	rows := map[string]bool{}
	_, table, ok := strings.Cut(readme, "\n## Values\n")
	if !ok {
		t.Fatal("the chart README has no \"## Values\" section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9.]+)` \\|").FindAllStringSubmatch(table, -1) {
		rows[m[1]] = true
	}
	for _, k := range want {
		if !rows[k] {
			t.Errorf("the chart README's values table has no row for %s", k)
		}
		delete(rows, k)
	}
	for k := range rows {
		t.Errorf("the chart README's values table lists %s, which values.yaml does not have", k)
	}
	t.Logf("figure: %d values documented", len(want))
}
