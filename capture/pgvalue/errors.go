package pgvalue

import "fmt"

// DecodeError reports a value that is not valid text for its type.
type DecodeError struct {
	TypeOID  uint32
	TypeName string
	Text     string // the offending text, truncated to 64 bytes
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding %q as %s (oid %d): %v", e.Text, e.TypeName, e.TypeOID, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

func newDecodeError(t *Type, text []byte, err error) *DecodeError {
	s := string(text)
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return &DecodeError{TypeOID: t.OID, TypeName: t.Name, Text: s, Err: err}
}
