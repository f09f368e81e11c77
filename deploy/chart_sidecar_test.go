package deploy

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
)

const legacyApp = "testdata/legacy-app"

// TestChartSidecar renders testdata/legacy-app, a parent chart that depends
// on the chronicler chart with mode sidecar and adds Chronicler to its own
// pod with the named templates, as the chart README shows. The chronicler
// chart renders no workload of its own; the parent's pod gets the hardened
// chronicler container beside the application, with its configuration,
// rules and secrets mounted from the ConfigMaps the subchart rendered and
// the Secret named in values.
func TestChartSidecar(t *testing.T) {
	parent, err := loader.Load(legacyApp)
	if err != nil {
		t.Fatal(err)
	}
	// `helm dependency update` would copy the chart into charts/; the test
	// adds the chart under test instead.
	parent.AddDependency(loadChart(t))
	o := decodeStrict(t, render(t, parent, nil))

	if len(o.deployments) != 1 || o.deployments[0].Name != "shop-legacy-app" {
		t.Fatalf("Deployments %d (first %q); want only the application's, shop-legacy-app", len(o.deployments), nameOf(o))
	}
	if len(o.services)+len(o.pdbs)+len(o.serviceMonitors)+len(o.serviceAccounts) != 0 {
		t.Errorf("sidecar mode rendered %d Services, %d PDBs, %d ServiceMonitors, %d ServiceAccounts; want none",
			len(o.services), len(o.pdbs), len(o.serviceMonitors), len(o.serviceAccounts))
	}
	pod := o.deployments[0].Spec.Template
	spec := &pod.Spec
	if len(spec.Containers) != 2 || spec.Containers[0].Name != "legacy-app" {
		t.Fatalf("containers %d; want legacy-app then chronicler", len(spec.Containers))
	}
	c := chroniclerContainer(t, spec)
	assertHardened(t, spec, c, false)
	cfg := renderedConfig(t, o)
	assertProbesAndPorts(t, c, cfg)
	if v := dig(cfg, "postgres", "url"); v != "postgres://chronicler@localhost:5432/legacy?sslmode=disable" {
		t.Errorf("postgres.url %v; want the parent's value for chronicler.config", v)
	}

	want := map[string]source{
		configPath:                        {"ConfigMap", "shop-chronicler-config", "chronicler.yaml"},
		rulesDir + "/accounts.yaml":       {"ConfigMap", "shop-chronicler-rules", "accounts.yaml"},
		secretsDir + "/postgres/password": {"Secret", "legacy-db-chronicler", "password"},
	}
	assertMounts(t, spec, c, want)
	if rules := o.configMap(t, "shop-chronicler-rules").Data; !strings.Contains(rules["accounts.yaml"], "AccountChanged") {
		t.Errorf("rules ConfigMap %v; want accounts.yaml from the parent's values", rules)
	}
	if p := fileKeys(cfg, "")["postgres.password_file"]; p != secretsDir+"/postgres/password" {
		t.Errorf("postgres.password_file %q; want %s/postgres/password", p, secretsDir)
	}
	if ann := pod.Annotations["checksum/chronicler-config"]; len(ann) != 64 {
		t.Errorf("pod annotation checksum/chronicler-config %q; want a sha256", ann)
	}
}

func nameOf(o objects) string {
	if len(o.deployments) == 0 {
		return ""
	}
	return o.deployments[0].Name
}
