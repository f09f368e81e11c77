package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	chartDir      = "helm/chronicler"
	releaseName   = "shop"
	releaseNS     = "cdc"
	referenceFile = "examples/chronicler.yaml"
)

// The paths the chart README promises (its "Files in the container" table);
// TestChartReadmeNamesThePaths checks the README says them, the mount tests
// check the pod has them.
const (
	configPath = "/etc/chronicler/chronicler.yaml"
	rulesDir   = "/etc/chronicler/rules"
	secretsDir = "/etc/chronicler/secrets"
)

// loadChart loads the chart the way `helm install` does (.helmignore applied).
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading %s: %v", chartDir, err)
	}
	return ch
}

// readValues reads and merges values files, later files winning, as
// `helm template -f a -f b` does.
func readValues(t *testing.T, files ...string) map[string]any {
	t.Helper()
	vals := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		vals = chartutil.MergeTables(v.AsMap(), vals)
	}
	return vals
}

// rendered is one `helm template` result: manifests by template path, and
// NOTES.txt.
type rendered struct {
	manifests map[string]string // non-empty documents by "template path#n"
	notes     string
}

// names returns the manifest keys in order.
func (r rendered) names() []string { return slices.Sorted(maps.Keys(r.manifests)) }

// render renders ch with user values as a client-only install does:
// dependencies processed, values coalesced and validated against
// values.schema.json, then the template engine.
func render(t *testing.T, ch *chart.Chart, vals map[string]any) rendered {
	t.Helper()
	r, err := tryRender(ch, vals)
	if err != nil {
		t.Fatalf("rendering %s: %v", ch.Name(), err)
	}
	return r
}

func tryRender(ch *chart.Chart, vals map[string]any) (rendered, error) {
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return rendered{}, err
	}
	// As `helm install` does: the chart's kubeVersion constraint must admit
	// the cluster (here Helm's default capabilities).
	if kv := ch.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, chartutil.DefaultCapabilities.KubeVersion.String()) {
		return rendered{}, fmt.Errorf("chart requires kubeVersion %s, which %s does not meet", kv, chartutil.DefaultCapabilities.KubeVersion.String())
	}
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNS, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return rendered{}, err
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return rendered{}, err
	}
	r := rendered{manifests: map[string]string{}}
	for name, text := range out {
		if strings.HasSuffix(name, "NOTES.txt") {
			if path.Dir(path.Dir(name)) == ch.Name() {
				r.notes = text
			}
			continue
		}
		for i, doc := range splitDocuments(text) {
			r.manifests[fmt.Sprintf("%s#%d", name, i)] = doc
		}
	}
	return r, nil
}

// splitDocuments splits a rendered template into its YAML documents,
// dropping empty ones (comments only).
func splitDocuments(text string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+text, "\n---") {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, strings.TrimLeft(d, "\n"))
		}
	}
	return docs
}

// objects are the decoded manifests of one render, by kind.
type objects struct {
	configMaps      []*corev1.ConfigMap
	serviceAccounts []*corev1.ServiceAccount
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	pdbs            []*policyv1.PodDisruptionBudget
	serviceMonitors []*unstructured.Unstructured
	pods            []*corev1.Pod  // the helm test Pod
	jobs            []*batchv1.Job // the teardown hook
	podMonitors     []*podMonitor
	prometheusRules []*prometheusRule
}

func (o objects) configMap(t *testing.T, name string) *corev1.ConfigMap {
	t.Helper()
	for _, c := range o.configMaps {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no ConfigMap %q rendered", name)
	return nil
}

// decodeStrict decodes every manifest into its typed Kubernetes object,
// strictly: an unknown or misspelled field, or a duplicate one, fails. The
// ServiceMonitor (a CRD, not in k8s.io/api) is decoded as unstructured.
func decodeStrict(t *testing.T, r rendered) objects {
	t.Helper()
	var o objects
	for _, name := range r.names() {
		doc := r.manifests[name]
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: not YAML: %v\n%s", name, err, doc)
		}
		want := map[string]string{
			"ConfigMap": "v1", "ServiceAccount": "v1", "Service": "v1", "Deployment": "apps/v1", "Pod": "v1",
			"PodDisruptionBudget": "policy/v1", "ServiceMonitor": "monitoring.coreos.com/v1",
			"PodMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1", "Job": "batch/v1",
		}[head.Kind]
		if want == "" {
			t.Fatalf("%s: kind %q; the chart renders no such kind (add it to decodeStrict)", name, head.Kind)
		}
		if head.APIVersion != want {
			t.Errorf("%s: %s apiVersion %q; want %q", name, head.Kind, head.APIVersion, want)
		}
		var err error
		switch head.Kind {
		case "ConfigMap":
			err = strictInto(doc, &o.configMaps)
		case "ServiceAccount":
			err = strictInto(doc, &o.serviceAccounts)
		case "Service":
			err = strictInto(doc, &o.services)
		case "Deployment":
			err = strictInto(doc, &o.deployments)
		case "PodDisruptionBudget":
			err = strictInto(doc, &o.pdbs)
		case "Pod":
			err = strictInto(doc, &o.pods)
		case "Job":
			err = strictInto(doc, &o.jobs)
		case "PodMonitor":
			err = strictInto(doc, &o.podMonitors)
		case "PrometheusRule":
			err = strictInto(doc, &o.prometheusRules)
		case "ServiceMonitor":
			// Not in k8s.io/api: strictly against the fields of the
			// Prometheus Operator's CRD the chart uses, then kept unstructured.
			var sms []*serviceMonitor
			if err = strictInto(doc, &sms); err != nil {
				break
			}
			u := &unstructured.Unstructured{}
			j, jerr := yaml.YAMLToJSON([]byte(doc))
			if jerr == nil {
				jerr = u.UnmarshalJSON(j)
			}
			err = jerr
			o.serviceMonitors = append(o.serviceMonitors, u)
		}
		if err != nil {
			t.Errorf("%s: strict decoding as %s: %v\n%s", name, head.Kind, err, doc)
		}
	}
	return o
}

// serviceMonitor is the subset of monitoring.coreos.com/v1 ServiceMonitor
// (Prometheus Operator API: ServiceMonitorSpec, Endpoint, NamespaceSelector)
// that the chart renders; a field the chart starts to render must be added
// here, checked against the CRD, or the strict decoding fails.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port,omitempty"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// podMonitor is the subset of monitoring.coreos.com/v1 PodMonitor
// (PodMonitorSpec, PodMetricsEndpoint) that the chart renders.
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		PodMetricsEndpoints []struct {
			Port          string `json:"port,omitempty"`
			Path          string `json:"path,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// prometheusRule is monitoring.coreos.com/v1 PrometheusRule (RuleGroup,
// Rule) as far as the chart renders it.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert,omitempty"`
				Record      string            `json:"record,omitempty"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels,omitempty"`
				Annotations map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// strictInto decodes doc strictly into a new T appended to list.
func strictInto[T any](doc string, list *[]*T) error {
	v := new(T)
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// validateSchema validates values (merged over the chart's defaults, as Helm
// does) against values.schema.json with the validator Helm itself uses, and
// returns its typed *jsonschema.ValidationError (nil if valid).
func validateSchema(t *testing.T, ch *chart.Chart, vals map[string]any) error {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ch.Schema))
	if err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("values.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("values.schema.json")
	if err != nil {
		t.Fatalf("values.schema.json does not compile: %v", err)
	}
	merged, err := chartutil.CoalesceValues(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(merged.AsMap())
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(inst)
}

// ciValues are the chart's test values files (ci/*-values.yaml), by name.
func ciValues(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s/ci/*-values.yaml: %v", chartDir, err)
	}
	out := map[string]string{}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), "-values.yaml")] = f
	}
	return out
}

// minimalValues is what a standalone install must add to the chart's
// defaults (tables and rules; the defaults alone fail at render).
const minimalValues = "testdata/minimal-values.yaml"

// valueCases are the values the chart is tested with, by name: "minimal"
// (the chart's own values plus minimalValues) and every ci/*-values.yaml,
// read.
func valueCases(t *testing.T) map[string]map[string]any {
	t.Helper()
	cases := map[string]map[string]any{"minimal": readValues(t, minimalValues)}
	for name, f := range ciValues(t) {
		cases[name] = readValues(t, f)
	}
	return cases
}

// mustRead reads a file or fails.
func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
