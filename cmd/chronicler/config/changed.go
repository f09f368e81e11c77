package config

import (
	"reflect"
	"slices"
	"strings"
)

// Changed lists the settings (paths, in file order) whose values differ
// between a and b, except those in ignore. A secret read from a file
// (a *_file setting, the same in both) is not compared: the file is read
// again where it is used. Values are never returned, only paths.
func Changed(a, b *Config, ignore ...string) []string {
	ra, rb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	keys := Keys()
	files := map[string]bool{}
	for _, k := range keys {
		if strings.HasSuffix(k.Path, "_file") && ra.FieldByIndex(k.field).String() != "" {
			files[strings.TrimSuffix(k.Path, "_file")] = true
		}
	}
	var out []string
	for _, k := range keys {
		if slices.Contains(ignore, k.Path) || (k.Secret && files[k.Path]) {
			continue
		}
		if !reflect.DeepEqual(ra.FieldByIndex(k.field).Interface(), rb.FieldByIndex(k.field).Interface()) {
			out = append(out, k.Path)
		}
	}
	return out
}
