package config

import "fmt"

// Error is one invalid setting.
type Error struct {
	File      string
	Line, Col int    // 0 when the setting is absent from the file
	Path      string // e.g. "store.url", "postgres.tables[2]"
	Reason    string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Col, e.Path, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Path, e.Reason)
}
