package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// chartSchema is the Helm chart's values schema, whose config section
// describes this package's file.
var chartSchema = filepath.Join("..", "..", "..", "deploy", "helm", "chronicler", "values.schema.json")

// patternValues are the values fed to both the chart's schema and this
// package's validation, by the kind of setting.
var patternValues = map[string][]string{
	"identifier": {"chronicler", "shop_1", "_x", "a", strings.Repeat("a", 63), strings.Repeat("a", 64), "Bad-Slot", "Chronicler", "1slot", "bad-slot", "sl ot", "é"},
	"duration":   {"1s", "500ms", "1m30s", "1.5h", ".5s", "1.s", "+1s", "2us", "2µs", "2μs", "10ns", "0s", "0", "-1s", "0.0s", "1", "1d", "soon", "1 s", "s"},
}

// TestChartSchemaPatternsMatchValidation: for every setting of the config
// section that the chart's values.schema.json constrains by a pattern, the
// schema accepts exactly the values this package's validation accepts
// (each value fed to both: the schema's patterns with Go's regexp, as Helm's
// validator compiles them, and Parse through the setting's environment
// variable).
func TestChartSchemaPatternsMatchValidation(t *testing.T) {
	var schema map[string]any
	b, err := os.ReadFile(chartSchema)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, k := range Keys() {
		node := schemaNode(schema, append([]string{"config"}, strings.Split(k.Path, ".")...))
		if node == nil {
			continue // a secret or a key the chart owns: not in the chart's config
		}
		patterns := schemaPatterns(node)
		if len(patterns) == 0 {
			continue
		}
		kind := "duration"
		if k.Path == "postgres.slot" || k.Path == "postgres.publication" {
			kind = "identifier"
		}
		for _, v := range patternValues[kind] {
			schemaOK := true
			for _, p := range patterns {
				schemaOK = schemaOK && regexp.MustCompile(p).MatchString(v)
			}
			binaryOK := acceptedByValidation(t, k, v)
			if schemaOK != binaryOK {
				t.Errorf("%s = %q: the chart's schema accepts it: %v, the binary: %v", k.Path, v, schemaOK, binaryOK)
			}
		}
		checked++
	}
	if checked < 8 { // slot, publication and the durations
		t.Errorf("%d settings with a pattern in %s; want slot, publication and every duration", checked, chartSchema)
	}
	t.Logf("figure: %d settings' schema patterns compared with the validation", checked)
}

// acceptedByValidation says whether a valid configuration with setting k
// set to v (by its environment variable) has no problem at k.
func acceptedByValidation(t *testing.T, k Key, v string) bool {
	t.Helper()
	_, err := Parse(filepath.Join(validDir(t), "c.yaml"), []byte(valid), All, envOf(map[string]string{k.Env: v}))
	if err == nil {
		return true
	}
	for _, e := range unwrap(t, err) {
		if e.Path == k.Path {
			return false
		}
	}
	t.Fatalf("%s = %q: problems elsewhere: %v", k.Path, v, err)
	return false
}

// schemaNode follows properties along path.
func schemaNode(n map[string]any, path []string) map[string]any {
	for _, p := range path {
		props, _ := n["properties"].(map[string]any)
		next, ok := props[p].(map[string]any)
		if !ok {
			return nil
		}
		n = next
	}
	return n
}

// schemaPatterns are a node's pattern and those of its allOf.
func schemaPatterns(n map[string]any) []string {
	var out []string
	if p, ok := n["pattern"].(string); ok {
		out = append(out, p)
	}
	all, _ := n["allOf"].([]any)
	for _, a := range all {
		if m, ok := a.(map[string]any); ok {
			out = append(out, schemaPatterns(m)...)
		}
	}
	return out
}
