package registry

import (
	"bytes"
	"encoding/json"

	"github.com/twmb/franz-go/pkg/sr"
)

// AppendFrame appends value in the Confluent wire format to dst: the magic
// byte 0, the schema id as 4 bytes big-endian, then the value (JSON)
// unchanged. Confluent's JSON Schema deserializers, and franz-go's
// sr.Serde, read it.
func AppendFrame(dst []byte, id int, value []byte) []byte {
	var h sr.ConfluentHeader
	dst, _ = h.AppendEncode(dst, id, nil) // fails only for a message index, which JSON has none of
	return append(dst, value...)
}

// decode parses a schema text from the registry (numbers as json.Number,
// as mapping.Schema.Doc has them).
func decode(text string) (any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(text)))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}
