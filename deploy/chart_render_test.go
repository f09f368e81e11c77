package deploy

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var update = flag.Bool("update", false, "rewrite the chart golden files (testdata/golden) from the current render")

// TestChartRendersStrictly renders the chart with its minimal values and
// with every ci/*-values.yaml, and decodes every manifest strictly into its
// Kubernetes API type, so a misspelled or unknown field fails. It also checks
// which kinds each mode renders.
func TestChartRendersStrictly(t *testing.T) {
	ch := loadChart(t)
	cases := valueCases(t)
	for _, want := range []string{"standalone", "sidecar", "env-secrets"} {
		if _, ok := cases[want]; !ok {
			t.Errorf("no ci/%s-values.yaml", want)
		}
	}
	for name, vals := range cases {
		t.Run(name, func(t *testing.T) {
			r := render(t, ch, vals)
			o := decodeStrict(t, r)
			if r.notes == "" {
				t.Error("NOTES.txt rendered empty")
			}
			sidecar := name == "sidecar"
			wantDeployments, wantServices, wantPDBs := 1, 1, 1
			if sidecar {
				wantDeployments, wantServices, wantPDBs = 0, 0, 0
			}
			if len(o.deployments) != wantDeployments || len(o.services) != wantServices || len(o.pdbs) != wantPDBs {
				t.Errorf("%d Deployments, %d Services, %d PDBs; want %d, %d, %d",
					len(o.deployments), len(o.services), len(o.pdbs), wantDeployments, wantServices, wantPDBs)
			}
			// The config ConfigMap always; the rules ConfigMap unless an existing one is named.
			wantCMs := 2
			rules, _ := vals["rules"].(map[string]any)
			if existing, _ := rules["existingConfigMap"].(string); existing != "" {
				wantCMs = 1
			}
			if len(o.configMaps) != wantCMs {
				t.Errorf("%d ConfigMaps; want %d", len(o.configMaps), wantCMs)
			}
			t.Logf("figure: chart render %s: %d manifests", name, len(r.manifests))
		})
	}
}

// TestChartGolden compares the render of the defaults plus
// testdata/minimal-values.yaml (every manifest and NOTES.txt) with
// testdata/golden/minimal.yaml. After an intended change:
//
//	go test -run TestChartGolden -update
func TestChartGolden(t *testing.T) {
	r := render(t, loadChart(t), readValues(t, minimalValues))
	var b strings.Builder
	for _, name := range r.names() {
		b.WriteString("# Source: " + name + "\n---\n" + strings.TrimSpace(r.manifests[name]) + "\n")
	}
	b.WriteString("# Source: NOTES.txt\n---\n" + strings.TrimSpace(r.notes) + "\n")
	golden := filepath.Join("testdata", "golden", "minimal.yaml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", golden)
	}
	want := string(mustRead(t, golden))
	if got := b.String(); got != want {
		t.Errorf("the minimal render differs from %s (run with -update if intended):\n%s", golden, lineDiff(want, got))
	}
}

// lineDiff shows the first differing lines of want and got, with context.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			lo := max(0, i-3)
			var b strings.Builder
			for j := lo; j < i; j++ {
				b.WriteString("  " + w[j] + "\n")
			}
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
			return b.String()
		}
	}
	return ""
}

// TestChartServiceMonitor: with serviceMonitor.enabled (ci/standalone) the
// ServiceMonitor selects the chart's Service and scrapes its http port at
// /metrics; by default none is rendered (the CRD may be missing).
func TestChartServiceMonitor(t *testing.T) {
	ch := loadChart(t)
	if o := decodeStrict(t, render(t, ch, readValues(t, minimalValues))); len(o.serviceMonitors) != 0 {
		t.Errorf("%d ServiceMonitors by default; want none", len(o.serviceMonitors))
	}
	o := decodeStrict(t, render(t, ch, readValues(t, ciValues(t)["standalone"])))
	if len(o.serviceMonitors) != 1 || len(o.services) != 1 {
		t.Fatalf("%d ServiceMonitors, %d Services; want 1 and 1", len(o.serviceMonitors), len(o.services))
	}
	sm, svc := o.serviceMonitors[0], o.services[0]
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	if len(sel) == 0 {
		t.Fatal("the ServiceMonitor has no selector")
	}
	for k, v := range sel {
		if svc.Labels[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s; the Service has %q", k, v, svc.Labels[k])
		}
	}
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v; want serviceMonitor.labels (release: prometheus)", sm.GetLabels())
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 {
		t.Fatalf("%d endpoints; want 1", len(eps))
	}
	ep, _ := eps[0].(map[string]any)
	if ep["port"] != svc.Spec.Ports[0].Name || ep["path"] != "/metrics" {
		t.Errorf("endpoint %v; want port %q path /metrics", ep, svc.Spec.Ports[0].Name)
	}
}
