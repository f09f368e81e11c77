package config

import "fmt"

// Error is one invalid setting.
type Error struct {
	File      string // the config file; "" when Env set it
	Env       string // the environment variable that set it, if one did
	Line, Col int    // 0 when the setting is absent from the file
	Path      string // e.g. "store.url", "postgres.tables[2]"
	Reason    string
}

func (e *Error) Error() string {
	switch {
	case e.Env != "":
		return fmt.Sprintf("%s: %s: %s", e.Env, e.Path, e.Reason)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Path, e.Reason)
	case e.File != "":
		return fmt.Sprintf("%s: %s: %s", e.File, e.Path, e.Reason)
	}
	return fmt.Sprintf("%s: %s (set it in the config file or as %s)", e.Path, e.Reason, EnvName(e.Path))
}
