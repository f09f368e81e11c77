package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/chronicler-dev/chronicler/mapping"
)

// Environment is where the CHRONICLER_* overrides come from.
type Environment interface {
	Lookup(name string) (string, bool)
}

// LookupFunc reads one environment variable. It cannot list the variables,
// so with it an unknown CHRONICLER_* variable goes unnoticed; use Environ.
type LookupFunc func(name string) (string, bool)

// Lookup calls f.
func (f LookupFunc) Lookup(name string) (string, bool) { return f(name) }

// Environ is an environment as NAME=value strings (os.Environ()). With it,
// a CHRONICLER_* variable that names no setting is an error naming the
// closest one.
type Environ []string

// Lookup finds name; the last definition wins, as in os.Getenv.
func (e Environ) Lookup(name string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e[i], "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// toolingVars are CHRONICLER_* variables that are not settings: the test
// stack's and the benchmark's.
var toolingVars = []string{"CHRONICLER_TEST_", "CHRONICLER_E2E_", "CHRONICLER_BENCH_", "CHRONICLER_CACHE_DIR"}

// unknownEnv reports every CHRONICLER_* variable of env that names no
// setting (only an Environ can be listed).
func unknownEnv(env Environment, v *validator) {
	list, ok := env.(Environ)
	if !ok {
		return
	}
	var known []string
	for _, k := range Keys() {
		known = append(known, k.Env)
	}
	for _, kv := range list {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || slices.Contains(known, name) || slices.ContainsFunc(toolingVars, func(t string) bool {
			return name == t || (strings.HasSuffix(t, "_") && strings.HasPrefix(name, t))
		}) {
			continue
		}
		e := &Error{Env: name, Reason: "names no setting"}
		if near := mapping.Closest(name, known, 4); near != "" {
			e.Reason += "; did you mean " + near + "?"
		} else {
			e.Reason += "; a setting's variable is CHRONICLER_ + its path upper-cased, '.' → '_' (see deploy/examples/chronicler.yaml)"
		}
		v.errs = append(v.errs, e)
	}
}

// Key is one setting of the file: its dotted path and environment variable.
type Key struct {
	Path   string // e.g. "kafka.sasl.password_file"
	Env    string // e.g. "CHRONICLER_KAFKA_SASL_PASSWORD_FILE"
	Secret bool   // never printed
	field  []int
}

// Keys lists every setting, in file order. The environment variable of a
// setting is EnvPrefix + its path upper-cased with '.' → '_'.
func Keys() []Key {
	var keys []Key
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || !f.IsExported() {
				continue
			}
			idx := append(append([]int(nil), index...), i)
			path := tag
			if prefix != "" {
				path = prefix + "." + tag
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, path, idx)
				continue
			}
			keys = append(keys, Key{Path: path, Env: EnvName(path), Secret: f.Tag.Get("secret") == "true", field: idx})
		}
	}
	walk(reflect.TypeOf(Config{}), "", nil)
	return keys
}

// EnvName is the environment variable of a setting path ("postgres.url",
// or "postgres.tables[2]" for the list it is in).
func EnvName(path string) string {
	if i := strings.IndexByte(path, '['); i >= 0 {
		path = path[:i]
	}
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv sets every setting whose variable is set. A value that does not
// parse is an error naming the variable.
func applyEnv(c *Config, env Environment, v *validator) { applyEnvUnder(c, env, v, "") }

// applyEnvUnder is applyEnv for the settings whose path starts with prefix.
func applyEnvUnder(c *Config, env Environment, v *validator, prefix string) {
	root := reflect.ValueOf(c).Elem()
	for _, k := range Keys() {
		s, ok := env.Lookup(k.Env)
		if !ok || !strings.HasPrefix(k.Path, prefix) {
			continue
		}
		v.fromEnv[k.Path] = k.Env
		f := root.FieldByIndex(k.field)
		switch f.Kind() {
		case reflect.String:
			f.SetString(s)
		case reflect.Bool:
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				v.bad(k.Path, "%q is not true or false", s)
				continue
			}
			f.SetBool(b)
		case reflect.Int, reflect.Int16, reflect.Int32, reflect.Int64:
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, f.Type().Bits())
			if err != nil {
				v.bad(k.Path, "%q is not an integer (%d-bit)", s, f.Type().Bits())
				continue
			}
			f.SetInt(n)
		case reflect.Slice: // []string, comma-separated
			var list []string
			for _, part := range strings.Split(s, ",") {
				if part = strings.TrimSpace(part); part != "" {
					list = append(list, part)
				}
			}
			f.Set(reflect.ValueOf(list))
		default:
			panic("config: no environment parser for " + f.Kind().String() + " (" + k.Path + ")")
		}
	}
}
