package config

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDecodeAndValidationTogether is the acceptance point: an
// unknown key, a wrong type, a bad slot and a bad duration are reported all
// at once, in one format (file:line:col: path: message), with a "did you
// mean" for the key and no Go internals.
func TestDecodeAndValidationTogether(t *testing.T) {
	src := `postgres:
  url: postgres://u@localhost/db
  slot: Bad-Slot
  publication: p1
  tables: [public.t]
  status_intervall: 1s
store:
  url: esdb://localhost:2113?tls=false
kafka:
  brokers: [localhost:9092]
  partitions: many
rules:
  paths: [rules]
shutdown:
  grace: soon
`
	file := filepath.Join(validDir(t), "bad.yaml")
	_, err := Parse(file, []byte(src), All, noEnv)
	errs := unwrap(t, err)
	want := map[string]string{
		"postgres.status_intervall": file + ":6:3: postgres.status_intervall: unknown key in postgres: did you mean status_interval? (see deploy/examples/chronicler.yaml)",
		"postgres.slot":             file + `:3:9: postgres.slot: "Bad-Slot" must be 1-63 lower-case letters, digits or '_', not starting with a digit`,
		"kafka.partitions":          file + `:11:15: kafka.partitions: "many" is not an integer (32-bit)`,
		"shutdown.grace":            file + `:15:10: shutdown.grace: "soon" is not a positive duration (e.g. 1s, 500ms)`,
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for _, e := range errs {
		if w, ok := want[e.Path]; !ok || e.Error() != w {
			t.Errorf("got  %s\nwant %s", e, w)
		}
	}
	for _, bad := range []string{"Go struct", "cannot unmarshal", "config.Config"} {
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error shows Go internals (%q):\n%v", bad, err)
		}
	}
}

// TestDecodeWrongTypes: each kind of setting refuses the wrong YAML kind at
// its position, the setting keeps its default, and validation does not
// report the same setting again.
func TestDecodeWrongTypes(t *testing.T) {
	for _, tc := range []struct{ line, path, want string }{
		{"http: {pprof: yes please}", "http.pprof", `"yes please" is not true or false`},
		{"http: {pprof: [1]}", "http.pprof", "a list is not true or false"},
		{"kafka: {brokers: ['localhost:9092'], partitions: 99999999999}", "kafka.partitions", `"99999999999" is not an integer (32-bit)`},
		{"kafka: {brokers: ['localhost:9092'], replication_factor: 40000}", "kafka.replication_factor", `"40000" is not an integer (16-bit)`},
		{"kafka: {brokers: localhost:9092}", "kafka.brokers", "want a list, e.g. [a, b], found a string"},
		{"kafka: {brokers: [{a: 1}]}", "kafka.brokers[0]", "want a text value, found a mapping"},
		{"log: [debug]", "log", "a section must be a mapping of keys, found a list"},
		{"logs: {level: debug}", "logs", "unknown key: did you mean log? (see deploy/examples/chronicler.yaml)"},
		{"http: {addr: ':1', addr: ':2'}", "http.addr", "set twice in this section: keep one"},
	} {
		src := strings.Replace(valid, "kafka:\n  brokers: [localhost:9092]\n  tls:\n", "", 1) + tc.line + "\n"
		if !strings.HasPrefix(tc.line, "kafka") {
			src += "kafka: {brokers: ['localhost:9092']}\n"
		}
		_, err := Parse(filepath.Join(validDir(t), "c.yaml"), []byte(src), All, noEnv)
		errs := unwrap(t, err)
		if len(errs) != 1 || errs[0].Path != tc.path || errs[0].Reason != tc.want || errs[0].Line == 0 {
			t.Errorf("%s:\ngot  %v\nwant one error at %s: %s", tc.line, err, tc.path, tc.want)
		}
	}
}

// TestYAMLSyntaxErrorInTheSameFormat: a syntax error is file:line:col too,
// and quotes no source line (it could hold a password).
func TestYAMLSyntaxErrorInTheSameFormat(t *testing.T) {
	src := "postgres:\n  url: postgres://u:hunter2@h/db\n  slot: [unclosed\n"
	_, err := Parse("c.yaml", []byte(src), All, noEnv)
	errs := unwrap(t, err)
	if len(errs) != 1 || !regexp.MustCompile(`^c\.yaml:\d+:\d+: YAML syntax: `).MatchString(errs[0].Error()) {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error quotes the source: %v", err)
	}
}

// TestUnknownEnvironmentVariable: a CHRONICLER_* variable that names no
// setting is an error naming the closest one; the tooling's variables are
// not settings and pass.
func TestUnknownEnvironmentVariable(t *testing.T) {
	env := envOf(map[string]string{"CHRONICLER_HTTP_ADR": "x", "CHRONICLER_POSTGRES_SLTO": "s", "CHRONICLER_NONSENSE_THING_ENTIRELY": "1",
		"CHRONICLER_TEST_KAFKA": "kfake", "CHRONICLER_CACHE_DIR": "/tmp", "OTHER_HTTP_ADR": "x"})
	_, err := Parse(filepath.Join(validDir(t), "c.yaml"), []byte(valid), All, env)
	errs := unwrap(t, err)
	got := map[string]string{}
	for _, e := range errs {
		got[e.Env] = e.Error()
	}
	want := map[string]string{
		"CHRONICLER_HTTP_ADR":      "CHRONICLER_HTTP_ADR: names no setting; did you mean CHRONICLER_HTTP_ADDR?",
		"CHRONICLER_POSTGRES_SLTO": "CHRONICLER_POSTGRES_SLTO: names no setting; did you mean CHRONICLER_POSTGRES_SLOT?",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
	if g := got["CHRONICLER_NONSENSE_THING_ENTIRELY"]; !strings.Contains(g, "names no setting; a setting's variable is CHRONICLER_ + its path") {
		t.Errorf("CHRONICLER_NONSENSE_THING_ENTIRELY: %q", g)
	}
	if len(errs) != 3 {
		t.Errorf("%d errors, want 3 (tooling variables and other prefixes pass):\n%v", len(errs), err)
	}
}

// TestSlotAndPublicationRequired: without them (no config at all) they are
// required, not "invalid".
func TestSlotAndPublicationRequired(t *testing.T) {
	_, err := Parse("", nil, Parts{Capture: true}, noEnv)
	got := map[string]string{}
	for _, e := range unwrap(t, err) {
		got[e.Path] = e.Error()
	}
	for _, p := range []string{"postgres.slot", "postgres.publication"} {
		if !strings.HasPrefix(got[p], p+": required: ") || !strings.Contains(got[p], "(set it in the config file or as CHRONICLER_POSTGRES_") {
			t.Errorf("%s: %q", p, got[p])
		}
	}
}

// TestSlotPatternIsTheCheck: SlotPattern (which the Helm chart's schema
// copies) accepts exactly what the validation accepts.
func TestSlotPatternIsTheCheck(t *testing.T) {
	re := regexp.MustCompile(SlotPattern)
	for _, s := range []string{"chronicler", "_x", "a1", "Bad", "bad-slot", "1abc", "", strings.Repeat("a", 63), strings.Repeat("a", 64), "sl0t_2", "é"} {
		if re.MatchString(s) != identOK(s) {
			t.Errorf("%q: pattern %v, validation %v", s, re.MatchString(s), identOK(s))
		}
	}
}
