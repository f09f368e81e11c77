package deploy

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestChartLint runs Helm's linter (what `helm lint --strict` runs) with the
// minimal values and every ci/*-values.yaml: no errors and no warnings.
func TestChartLint(t *testing.T) {
	cases := valueCases(t)
	for name, vals := range cases {
		t.Run(name, func(t *testing.T) {
			l := lint.AllWithKubeVersionAndSchemaValidation(chartDir, vals, releaseNS, nil, false)
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				} else {
					t.Logf("helm lint (info, accepted): %s", m)
				}
			}
		})
	}
}

// TestChartSchemaRejects renders each testdata/invalid/*.yaml over the
// defaults: the install fails on values.schema.json, and Helm's validator
// names the value at fault (its location and the kind of violation).
func TestChartSchemaRejects(t *testing.T) {
	ch := loadChart(t)
	cases := []struct {
		file string
		at   string               // instance location, slash-separated
		kind jsonschema.ErrorKind // the violated keyword
		prop string               // for additionalProperties: the unknown key
	}{
		{"replicas-type.yaml", "replicas", &kind.Type{}, ""},
		{"misspelled-key.yaml", "", &kind.AdditionalProperties{}, "replicaCount"},
		{"misspelled-nested-key.yaml", "secrets/postgres", &kind.AdditionalProperties{}, "existingSecretName"},
		{"misspelled-config-section.yaml", "config", &kind.AdditionalProperties{}, "postgress"},
		{"misspelled-config-key.yaml", "config/postgres", &kind.AdditionalProperties{}, "tabels"},
		{"mode-enum.yaml", "mode", &kind.Enum{}, ""},
		{"password-in-config.yaml", "config/postgres/password", &kind.Not{}, ""},
		{"password-in-url.yaml", "config/store/url", &kind.Not{}, ""},
		{"sasl-token-in-config.yaml", "config/kafka/sasl/token", &kind.Not{}, ""},
		{"port-range.yaml", "httpPort", &kind.Maximum{}, ""},
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	if len(files) != len(cases) {
		t.Errorf("%d files in testdata/invalid, %d cases: give every file a case", len(files), len(cases))
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.file, ".yaml"), func(t *testing.T) {
			vals := readValues(t, filepath.Join("testdata", "invalid", c.file))
			// The install path: values are validated before anything renders.
			if _, err := tryRender(ch, vals); err == nil {
				t.Fatal("rendered; want the install refused by values.schema.json")
			}
			err := validateSchema(t, ch, vals)
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("validation error %v (%T); want a *jsonschema.ValidationError", err, err)
			}
			leaves := leafErrors(ve)
			for _, l := range leaves {
				if strings.Join(l.InstanceLocation, "/") != c.at || reflect.TypeOf(l.ErrorKind) != reflect.TypeOf(c.kind) {
					continue
				}
				if ap, ok := l.ErrorKind.(*kind.AdditionalProperties); ok && !slices.Contains(ap.Properties, c.prop) {
					continue
				}
				return
			}
			t.Errorf("no %T at /%s among the violations:\n%s", c.kind, c.at, describe(leaves))
		})
	}
}

// TestChartSchemaAcceptsCIValues: every ci values file, and the defaults,
// are valid (so the rejections above are about the one broken value).
func TestChartSchemaAcceptsCIValues(t *testing.T) {
	ch := loadChart(t)
	if err := validateSchema(t, ch, nil); err != nil {
		t.Errorf("default values: %v", err)
	}
	for name, f := range ciValues(t) {
		if err := validateSchema(t, ch, readValues(t, f)); err != nil {
			t.Errorf("ci/%s-values.yaml: %v", name, err)
		}
	}
}

// leafErrors flattens a validation error tree to the violations themselves.
func leafErrors(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leafErrors(c)...)
	}
	return out
}

func describe(errs []*jsonschema.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "  /%s: %T %v\n", strings.Join(e.InstanceLocation, "/"), e.ErrorKind, e.ErrorKind)
	}
	return b.String()
}

// TestChartRefusesInconsistentValues: combinations the schema cannot express
// fail the render (the install) with a message naming the values to fix.
// Helm returns template failures as plain errors, so the test checks that
// the message names the value.
func TestChartRefusesInconsistentValues(t *testing.T) {
	ch := loadChart(t)
	cases := []struct {
		name  string
		vals  map[string]any
		names string
	}{
		{"tls secret without keys", map[string]any{"secrets": map[string]any{"kafkaTls": map[string]any{"existingSecret": "ca", "caKey": ""}}}, "secrets.kafkaTls.existingSecret"},
		{"client cert without key", map[string]any{"secrets": map[string]any{"kafkaTls": map[string]any{"existingSecret": "ca", "certKey": "tls.crt"}}}, "secrets.kafkaTls"},
		{"sasl secret without keys", map[string]any{"secrets": map[string]any{"kafkaSasl": map[string]any{"existingSecret": "u", "passwordKey": ""}}}, "secrets.kafkaSasl.existingSecret"},
		{"rules twice", map[string]any{"rules": map[string]any{"existingConfigMap": "r", "files": map[string]any{"a.yaml": "capture: []"}}}, "rules.existingConfigMap"},
		// The chart's defaults alone cannot start: no rules, no tables.
		{"defaults: no rules", nil, "rules.files"},
		{"defaults: no tables", map[string]any{"rules": map[string]any{"existingConfigMap": "r"}}, "config.postgres.tables"},
		{"pod monitor without selector", map[string]any{"mode": "sidecar", "podMonitor": map[string]any{"enabled": true}, "rules": map[string]any{"existingConfigMap": "r"},
			"config": map[string]any{"postgres": map[string]any{"tables": []any{"public.t"}}}}, "podMonitor.podSelector"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := validateSchema(t, ch, c.vals); err != nil {
				t.Fatalf("the schema refused it (%v); this case is about the render checks", err)
			}
			_, err := tryRender(ch, c.vals)
			if err == nil {
				t.Fatal("rendered; want the render refused")
			}
			if !strings.Contains(err.Error(), c.names) {
				t.Errorf("error %q does not name %s", err, c.names)
			}
		})
	}
	// A publish-only instance captures nothing: it needs no tables.
	if _, err := tryRender(ch, map[string]any{"only": "publish", "rules": map[string]any{"existingConfigMap": "r"}}); err != nil {
		t.Errorf("only: publish without tables: %v; want it rendered", err)
	}
}
