package deploy

import (
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"
)

var (
	alertRulesFile = filepath.Join(chartDir, "files", "prometheus-rules.yaml")
	dashboardFile  = filepath.Join(chartDir, "files", "grafana-dashboard.json")
	// metricsFile lists the metric families of a running `chronicler run`;
	// TestMetricsReference (test/e2e, main module) writes it from /metrics
	// and fails when the binary's metrics and this file differ.
	metricsFile = filepath.Join("testdata", "metrics.txt")
)

// exposedMetrics reads metricsFile: family name → type.
func exposedMetrics(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(string(mustRead(t, metricsFile)), "\n") {
		if name, typ, ok := strings.Cut(l, " "); ok && !strings.HasPrefix(l, "#") {
			out[name] = typ
		}
	}
	if len(out) < 20 {
		t.Fatalf("%s lists %d metric families; regenerate it (TestMetricsReference)", metricsFile, len(out))
	}
	return out
}

// metricNames are the metric names an expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("%q: %v", expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// checkExposed fails for a metric name that no family of the running binary
// has (a histogram's _bucket, _sum and _count belong to its family).
func checkExposed(t *testing.T, where string, names []string, exposed map[string]string) {
	t.Helper()
	if len(names) == 0 {
		t.Errorf("%s: selects no metric", where)
	}
	for _, n := range names {
		fam := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && exposed[base] == "histogram" {
				fam = base
			}
		}
		if _, ok := exposed[fam]; !ok {
			t.Errorf("%s: metric %s is not on a running Chronicler's /metrics (%s)", where, n, metricsFile)
		}
	}
}

// TestChartAlertRules parses files/prometheus-rules.yaml with Prometheus's
// own rule-file parser (what `promtool check rules` runs: strict YAML,
// every expression parsed, templates checked), and checks that each alert
// has a severity and a summary and that every metric it reads is one a
// running Chronicler exposes.
func TestChartAlertRules(t *testing.T) {
	exposed := exposedMetrics(t)
	groups, errs := rulefmt.Parse(mustRead(t, alertRulesFile), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(errs) > 0 {
		t.Fatalf("%s: %v", alertRulesFile, errs)
	}
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: severity %q, summary %q, description %q; want all three", r.Alert, r.Labels["severity"], r.Annotations["summary"], r.Annotations["description"])
			}
			checkExposed(t, "alert "+r.Alert, metricNames(t, r.Expr), exposed)
		}
	}
	// What the rules must cover: WAL retained by the slot, capture and
	// publish lag, dead letters, HA without an active instance.
	for _, want := range []string{"ChroniclerSlotRetainsWAL", "ChroniclerCaptureLagging", "ChroniclerPublishLagging", "ChroniclerCaptureDeadLetters", "ChroniclerPublishDeadLetters", "ChroniclerNoActiveInstance"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s (have %v)", want, alerts)
		}
	}
	t.Logf("figure: %d alert rules parsed", len(alerts))
}

// grafanaVars replaces Grafana's variables in an expression with values
// PromQL accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$namespace", "ns", "$job", "job")

// TestChartDashboard: files/grafana-dashboard.json is a Grafana dashboard
// (JSON with a uid, panels with grid positions and Prometheus targets),
// every panel's expression parses as PromQL and every metric it reads is
// one a running Chronicler exposes.
func TestChartDashboard(t *testing.T) {
	exposed := exposedMetrics(t)
	var d struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			GridPos *struct {
				X, Y, W, H int
			} `json:"gridPos"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(mustRead(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) < 6 {
		t.Fatalf("dashboard uid %q title %q, %d panels", d.UID, d.Title, len(d.Panels))
	}
	ids := map[int]bool{}
	exprs := 0
	for _, p := range d.Panels {
		if ids[p.ID] || p.GridPos == nil || p.GridPos.W == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %q: id %d (duplicate: %v), gridPos %v, %d targets", p.Title, p.ID, ids[p.ID], p.GridPos, len(p.Targets))
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			exprs++
			checkExposed(t, "panel "+p.Title, metricNames(t, grafanaVars.Replace(tg.Expr)), exposed)
		}
	}
	t.Logf("figure: %d dashboard panels, %d expressions parsed", len(d.Panels), exprs)
}

// TestChartMonitoringRendered: with prometheusRule and grafanaDashboard
// enabled the chart renders the two files unchanged (a PrometheusRule whose
// groups are the rule file's, a ConfigMap labelled for Grafana's sidecar);
// in sidecar mode a PodMonitor selects the application's pods and scrapes
// the http port; by default none of these is rendered.
func TestChartMonitoringRendered(t *testing.T) {
	ch := loadChart(t)
	min := readValues(t, minimalValues)
	o := decodeStrict(t, render(t, ch, min))
	if len(o.prometheusRules)+len(o.podMonitors) != 0 || len(o.configMaps) != 2 {
		t.Errorf("by default %d PrometheusRules, %d PodMonitors, %d ConfigMaps; want 0, 0, 2", len(o.prometheusRules), len(o.podMonitors), len(o.configMaps))
	}
	on := chartutil.MergeTables(map[string]any{
		"prometheusRule":   map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
		"grafanaDashboard": map[string]any{"enabled": true},
	}, readValues(t, minimalValues))
	o = decodeStrict(t, render(t, ch, on))
	if len(o.prometheusRules) != 1 {
		t.Fatalf("%d PrometheusRules; want 1", len(o.prometheusRules))
	}
	pr := o.prometheusRules[0]
	var file struct {
		Groups any `json:"groups"`
	}
	if err := yaml.Unmarshal(mustRead(t, alertRulesFile), &file); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(file.Groups)
	b, _ := json.Marshal(pr.Spec.Groups)
	if !jsonEqual(t, a, b) {
		t.Errorf("the PrometheusRule's groups differ from %s:\n%s\n%s", alertRulesFile, a, b)
	}
	if pr.Labels["release"] != "prometheus" {
		t.Errorf("PrometheusRule labels %v; want prometheusRule.labels", pr.Labels)
	}
	cm := o.configMap(t, "shop-chronicler-dashboard")
	if cm.Labels["grafana_dashboard"] != "1" || cm.Data["chronicler-dashboard.json"] != strings.TrimRight(string(mustRead(t, dashboardFile)), "\n") {
		t.Errorf("dashboard ConfigMap labels %v, content equal to %s: %v", cm.Labels, dashboardFile, cm.Data["chronicler-dashboard.json"] == string(mustRead(t, dashboardFile)))
	}

	sidecar := chartutil.MergeTables(map[string]any{"podMonitor": map[string]any{"enabled": true, "podSelector": map[string]any{"app": "legacy-app"}}},
		readValues(t, ciValues(t)["sidecar"]))
	o = decodeStrict(t, render(t, ch, sidecar))
	if len(o.podMonitors) != 1 {
		t.Fatalf("%d PodMonitors in sidecar mode; want 1", len(o.podMonitors))
	}
	pm := o.podMonitors[0]
	if pm.Spec.Selector.MatchLabels["app"] != "legacy-app" || len(pm.Spec.PodMetricsEndpoints) != 1 ||
		pm.Spec.PodMetricsEndpoints[0].Port != "http" || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
		t.Errorf("PodMonitor spec %+v; want selector app=legacy-app, port http, path /metrics", pm.Spec)
	}
	// The port the PodMonitor scrapes is the sidecar container's.
	parent, err := loader.Load(legacyApp)
	if err != nil {
		t.Fatal(err)
	}
	parent.AddDependency(loadChart(t))
	po := decodeStrict(t, render(t, parent, nil))
	c := chroniclerContainer(t, &po.deployments[0].Spec.Template.Spec)
	if len(c.Ports) != 1 || c.Ports[0].Name != pm.Spec.PodMetricsEndpoints[0].Port {
		t.Errorf("sidecar ports %v; the PodMonitor scrapes %q", c.Ports, pm.Spec.PodMetricsEndpoints[0].Port)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// TestChartHelmTest: the standalone render has a `helm test` hook Pod that
// runs `chronicler check` with the same image, configuration, rules and
// secrets as the Deployment's container, no probes, restartPolicy Never;
// sidecar mode has none (the check would not run in the application's pod).
func TestChartHelmTest(t *testing.T) {
	o, spec, c := podOf(t, ciValues(t)["standalone"])
	if len(o.pods) != 1 {
		t.Fatalf("%d Pods; want the helm test Pod", len(o.pods))
	}
	p := o.pods[0]
	if p.Annotations["helm.sh/hook"] != "test" || p.Spec.RestartPolicy != "Never" {
		t.Errorf("hook %q, restartPolicy %q; want test and Never", p.Annotations["helm.sh/hook"], p.Spec.RestartPolicy)
	}
	if len(p.Spec.Containers) != 1 {
		t.Fatalf("%d containers; want 1", len(p.Spec.Containers))
	}
	chk := &p.Spec.Containers[0]
	if want := []string{"check", "--config", configPath}; !slices.Equal(chk.Args, want) {
		t.Errorf("args %v; want %v", chk.Args, want)
	}
	if chk.Image != c.Image || chk.LivenessProbe != nil || chk.ReadinessProbe != nil || len(chk.Ports) != 0 {
		t.Errorf("image %q (want %q), probes %v %v, ports %v; want the same image, no probes, no ports", chk.Image, c.Image, chk.LivenessProbe, chk.ReadinessProbe, chk.Ports)
	}
	assertHardened(t, &p.Spec, chk, true)
	// Every file the Deployment's container reads, the check reads from the same source.
	for _, f := range []string{configPath, rulesDir + "/capture.yaml", secretsDir + "/postgres/password", secretsDir + "/store/password", secretsDir + "/kafka-sasl/password", secretsDir + "/kafka-tls/ca.crt"} {
		want, _, ok1 := resolve(spec, c, f)
		got, _, ok2 := resolve(&p.Spec, chk, f)
		if !ok1 || !ok2 || got != want {
			t.Errorf("%s: the check reads %v (%v), the Deployment %v (%v)", f, got, ok2, want, ok1)
		}
	}
	publish := chartutil.MergeTables(map[string]any{"only": "publish"}, readValues(t, minimalValues))
	if po := decodeStrict(t, render(t, loadChart(t), publish)); len(po.pods) != 1 || !slices.Equal(po.pods[0].Spec.Containers[0].Args[3:], []string{"--only", "publish"}) {
		t.Errorf("only: publish: the check does not run with --only publish")
	}
	if so := decodeStrict(t, render(t, loadChart(t), readValues(t, ciValues(t)["sidecar"]))); len(so.pods) != 0 {
		t.Errorf("sidecar mode rendered %d helm test Pods; want none", len(so.pods))
	}
}

var nativeSidecarTemplate = regexp.MustCompile(`include "chronicler\.container"`)

// TestChartNativeSidecar renders the legacy-app example with the container
// under initContainers through chronicler.nativeSidecar: a Kubernetes
// native sidecar (restartPolicy Always), otherwise the same container.
func TestChartNativeSidecar(t *testing.T) {
	parent, err := loader.Load(legacyApp)
	if err != nil {
		t.Fatal(err)
	}
	parent.AddDependency(loadChart(t))
	for _, f := range parent.Templates {
		if f.Name != "templates/deployment.yaml" {
			continue
		}
		src := string(f.Data)
		if !nativeSidecarTemplate.MatchString(src) {
			t.Fatal("the legacy-app deployment no longer includes chronicler.container; update this test")
		}
		// Move the include from containers: to initContainers:.
		src = strings.Replace(src, "        {{- include \"chronicler.container\" .Subcharts.chronicler | nindent 8 }}\n", "", 1)
		src = strings.Replace(src, "      containers:\n", "      initContainers:\n        {{- include \"chronicler.nativeSidecar\" .Subcharts.chronicler | nindent 8 }}\n      containers:\n", 1)
		f.Data = []byte(src)
	}
	o := decodeStrict(t, render(t, parent, nil))
	spec := &o.deployments[0].Spec.Template.Spec
	if len(spec.InitContainers) != 1 || len(spec.Containers) != 1 {
		t.Fatalf("%d init containers, %d containers; want the sidecar among the init containers", len(spec.InitContainers), len(spec.Containers))
	}
	c := &spec.InitContainers[0]
	if c.RestartPolicy == nil || *c.RestartPolicy != "Always" {
		t.Errorf("restartPolicy %v; want Always (a native sidecar)", c.RestartPolicy)
	}
	assertHardened(t, spec, c, false)
	assertProbesAndPorts(t, c, renderedConfig(t, o))
}

// TestChartTeardownOnDelete: with teardownOnDelete.enabled the standalone
// render has a pre-delete hook Job running `chronicler teardown --yes` with
// the Deployment's image, configuration and secrets; by default, and with
// only: publish (no slot of its own), there is none.
func TestChartTeardownOnDelete(t *testing.T) {
	if o := decodeStrict(t, render(t, loadChart(t), readValues(t, ciValues(t)["standalone"]))); len(o.jobs) != 0 {
		t.Fatalf("%d Jobs by default; want none", len(o.jobs))
	}
	vals := chartutil.MergeTables(map[string]any{"teardownOnDelete": map[string]any{"enabled": true}}, readValues(t, ciValues(t)["standalone"]))
	o := decodeStrict(t, render(t, loadChart(t), vals))
	if len(o.jobs) != 1 || len(o.deployments) != 1 {
		t.Fatalf("%d Jobs, %d Deployments; want the teardown Job beside the Deployment", len(o.jobs), len(o.deployments))
	}
	j := o.jobs[0]
	if j.Annotations["helm.sh/hook"] != "pre-delete" || j.Spec.Template.Spec.RestartPolicy != "Never" {
		t.Errorf("hook %q, restartPolicy %q; want pre-delete and Never", j.Annotations["helm.sh/hook"], j.Spec.Template.Spec.RestartPolicy)
	}
	spec := &o.deployments[0].Spec.Template.Spec
	c := chroniclerContainer(t, spec)
	td := &j.Spec.Template.Spec.Containers[0]
	if want := []string{"teardown", "--config", configPath, "--yes"}; !slices.Equal(td.Args, want) {
		t.Errorf("args %v; want %v", td.Args, want)
	}
	if td.Image != c.Image || td.LivenessProbe != nil || td.ReadinessProbe != nil {
		t.Errorf("image %q (want %q), probes %v %v", td.Image, c.Image, td.LivenessProbe, td.ReadinessProbe)
	}
	assertHardened(t, &j.Spec.Template.Spec, td, true)
	for _, f := range []string{configPath, secretsDir + "/postgres/password"} {
		want, _, ok1 := resolve(spec, c, f)
		got, _, ok2 := resolve(&j.Spec.Template.Spec, td, f)
		if !ok1 || !ok2 || got != want {
			t.Errorf("%s: teardown reads %v (%v), the Deployment %v (%v)", f, got, ok2, want, ok1)
		}
	}
	publish := chartutil.MergeTables(map[string]any{"only": "publish", "teardownOnDelete": map[string]any{"enabled": true}}, readValues(t, minimalValues))
	if po := decodeStrict(t, render(t, loadChart(t), publish)); len(po.jobs) != 0 {
		t.Errorf("only: publish rendered %d teardown Jobs; want none (it has no slot)", len(po.jobs))
	}
}
