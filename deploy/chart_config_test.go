package deploy

import (
	"encoding/json"
	"helm.sh/helm/v3/pkg/chartutil"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// referenceKeys returns every key path of the reference configuration,
// including the keys it documents as commented-out defaults
// ("  # chunk_rows: 10000" under snapshot is postgres.snapshot.chunk_rows).
func referenceKeys(t *testing.T) map[string]bool {
	t.Helper()
	commented := regexp.MustCompile(`(?m)^(\s*)# ([a-z][a-z0-9_]*):( |$)`)
	text := commented.ReplaceAllString(string(mustRead(t, referenceFile)), "$1$2:$3")
	var ref map[string]any
	if err := yaml.Unmarshal([]byte(text), &ref); err != nil {
		t.Fatalf("%s (commented defaults uncommented) is not YAML: %v", referenceFile, err)
	}
	keys := map[string]bool{}
	for _, k := range keyPaths(ref, "") {
		keys[k] = true
	}
	if len(keys) < 10 {
		t.Fatalf("%s has %d keys; the walk is broken", referenceFile, len(keys))
	}
	return keys
}

// keyPaths lists the dotted paths of every map key under m (list elements
// that are maps contribute their keys under the list's path).
func keyPaths(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		p := prefix + k
		out = append(out, p)
		switch v := v.(type) {
		case map[string]any:
			out = append(out, keyPaths(v, p+".")...)
		case []any:
			for _, e := range v {
				if em, ok := e.(map[string]any); ok {
					out = append(out, keyPaths(em, p+".")...)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestChartConfigShape parses chronicler.yaml from the rendered ConfigMap
// (default values and every ci values file) and checks that every key it
// has exists in the reference configuration, and that it holds no secret:
// no password or token key, no URL with a password.
func TestChartConfigShape(t *testing.T) {
	ref := referenceKeys(t)
	ch := loadChart(t)
	cases := valueCases(t)
	for name, vals := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := renderedConfig(t, decodeStrict(t, render(t, ch, vals)))
			for _, k := range keyPaths(cfg, "") {
				if !ref[k] {
					t.Errorf("the chart renders config key %s, which %s does not have", k, referenceFile)
				}
			}
			assertNoSecrets(t, cfg, "")
		})
	}
}

var urlPassword = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:[^/@]*@|(^|\s)password\s*=`)

// assertNoSecrets fails on a key that holds a secret in clear (password,
// token) and on a string value with a password inside a URL or DSN.
func assertNoSecrets(t *testing.T, v any, path string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, vv := range v {
			if k == "password" || k == "token" {
				t.Errorf("config key %s%s holds a secret in clear", path, k)
			}
			assertNoSecrets(t, vv, path+k+".")
		}
	case []any:
		for _, e := range v {
			assertNoSecrets(t, e, path)
		}
	case string:
		if urlPassword.MatchString(v) {
			t.Errorf("config %s has a password in a URL", strings.TrimSuffix(path, "."))
		}
	}
}

// TestChartConfigChecksumRolls: changing one configuration value changes the
// pod's checksum/chronicler-config annotation (so the pods roll), and
// changing only a rule file does not (rule files are reloaded in place).
func TestChartConfigChecksumRolls(t *testing.T) {
	ch := loadChart(t)
	sum := func(vals map[string]any) string {
		t.Helper()
		o := decodeStrict(t, render(t, ch, vals))
		return o.deployments[0].Spec.Template.Annotations["checksum/chronicler-config"]
	}
	with := func(extra map[string]any) map[string]any {
		return chartutil.MergeTables(extra, readValues(t, minimalValues))
	}
	base := sum(with(nil))
	level := sum(with(map[string]any{"config": map[string]any{"log": map[string]any{"level": "debug"}}}))
	rules := sum(with(map[string]any{"rules": map[string]any{"files": map[string]any{"a.yaml": "capture: []\n"}}}))
	if base == "" || base == level {
		t.Errorf("checksum %q before and %q after changing config.log.level; want a change", base, level)
	}
	if base != rules {
		t.Errorf("checksum changed with a rule file (%q → %q); rule changes are reloaded without a restart", base, rules)
	}
}

// TestChartSchemaMatchesReference: values.schema.json describes config with
// exactly the keys of the reference configuration, so a misspelled key fails
// at install time and a key the product adds to the reference fails here
// until the schema knows it.
func TestChartSchemaMatchesReference(t *testing.T) {
	ref := referenceKeys(t)
	var schema map[string]any
	if err := json.Unmarshal(loadChart(t).Schema, &schema); err != nil {
		t.Fatal(err)
	}
	cfg, _ := dig(schema, "properties", "config").(map[string]any)
	if cfg == nil {
		t.Fatal("values.schema.json has no properties.config")
	}
	inSchema := map[string]bool{}
	var walk func(s map[string]any, prefix string)
	walk = func(s map[string]any, prefix string) {
		if s["additionalProperties"] != false {
			t.Errorf("values.schema.json: config%s allows unknown keys (additionalProperties is not false)", strings.TrimSuffix("."+prefix, "."))
		}
		props, _ := s["properties"].(map[string]any)
		for k, v := range props {
			inSchema[prefix+k] = true
			if sub, ok := v.(map[string]any); ok && sub["type"] == "object" {
				walk(sub, prefix+k+".")
			}
		}
	}
	walk(cfg, "")
	for k := range ref {
		if !inSchema[k] {
			t.Errorf("%s has %s; values.schema.json's config does not", referenceFile, k)
		}
	}
	for k := range inSchema {
		if !ref[k] {
			t.Errorf("values.schema.json's config has %s; %s does not", k, referenceFile)
		}
	}
	t.Logf("figure: %d configuration keys in the reference and the schema", len(ref))
}
