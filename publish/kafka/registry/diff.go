package registry

import (
	"fmt"
	"sort"
	"strings"
)

// Differences lists how schema next differs from schema old in the ways
// that make JSON values of one unreadable by the other, by field path:
// fields removed, fields newly required, types changed, objects closed
// (additionalProperties: false), fields added to an open object (which a
// value of the old schema may already hold with another type). It follows
// properties and items; it is the explanation of a registry's verdict, not
// a verdict of its own.
func Differences(old, next any) []string {
	var out []string
	differences("", old, next, &out, 0)
	return out
}

func differences(path string, old, next any, out *[]string, depth int) {
	o, ok1 := old.(map[string]any)
	n, ok2 := next.(map[string]any)
	if !ok1 || !ok2 || depth > 32 {
		return
	}
	name := "the value"
	if path != "" {
		name = fmt.Sprintf("field %q", path)
	}
	if ot, nt := typeList(o), typeList(n); len(ot) > 0 && len(nt) > 0 && strings.Join(ot, ",") != strings.Join(nt, ",") {
		*out = append(*out, fmt.Sprintf("%s changed type from %s to %s", name, strings.Join(ot, "|"), strings.Join(nt, "|")))
	}
	op, _ := o["properties"].(map[string]any)
	np, _ := n["properties"].(map[string]any)
	oreq, nreq := stringSet(o["required"]), stringSet(n["required"])
	oOpen := o["additionalProperties"] != false
	if oOpen && n["additionalProperties"] == false {
		*out = append(*out, fmt.Sprintf("%s no longer allows other fields (additionalProperties: false)", name))
	}
	for _, k := range sortedKeys(op) {
		if _, ok := np[k]; !ok {
			*out = append(*out, fmt.Sprintf("field %q removed", join(path, k)))
		}
	}
	for _, k := range sortedKeys(nreq) {
		if oreq[k] {
			continue
		}
		if _, had := op[k]; had {
			*out = append(*out, fmt.Sprintf("field %q now required", join(path, k)))
		} else {
			*out = append(*out, fmt.Sprintf("field %q added as required", join(path, k)))
		}
	}
	for _, k := range sortedKeys(np) {
		if _, had := op[k]; !had && !nreq[k] && oOpen {
			*out = append(*out, fmt.Sprintf("field %q added to an object that allowed any other field (old values may hold it with another type)", join(path, k)))
		}
	}
	for _, k := range sortedKeys(op) {
		if nv, ok := np[k]; ok {
			differences(join(path, k), op[k], nv, out, depth+1)
		}
	}
	differences(path+"[]", o["items"], n["items"], out, depth+1)
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func typeList(m map[string]any) []string {
	var out []string
	switch t := m["type"].(type) {
	case string:
		out = []string{t}
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

func stringSet(v any) map[string]bool {
	out := map[string]bool{}
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok {
			out[s] = true
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
