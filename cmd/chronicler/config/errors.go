package config

import (
	"fmt"
	"strings"
)

// Error is one invalid setting.
type Error struct {
	File      string // the config file; "" when Env set it
	Env       string // the environment variable that set it, if one did
	Line, Col int    // 0 when the setting is absent from the file
	Path      string // e.g. "store.url", "postgres.tables[2]"
	Reason    string
}

// Error is "where: path: reason", where is the variable that set the
// setting, or file:line:col, or the file alone when the setting is absent
// from it; a setting absent everywhere says where it can be set.
func (e *Error) Error() string {
	var where string
	switch {
	case e.Env != "":
		where = e.Env
	case e.Line > 0:
		where = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	default:
		where = e.File
	}
	var parts []string
	for _, p := range []string{where, e.Path, e.Reason} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	s := strings.Join(parts, ": ")
	if where == "" && e.Path != "" {
		s += fmt.Sprintf(" (set it in the config file or as %s)", EnvName(e.Path))
	}
	return s
}
