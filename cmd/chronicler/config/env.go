package config

import (
	"reflect"
	"strconv"
	"strings"
)

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
func applyEnv(c *Config, env LookupFunc, v *validator) { applyEnvUnder(c, env, v, "") }

// applyEnvUnder is applyEnv for the settings whose path starts with prefix.
func applyEnvUnder(c *Config, env LookupFunc, v *validator, prefix string) {
	root := reflect.ValueOf(c).Elem()
	for _, k := range Keys() {
		s, ok := env(k.Env)
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
