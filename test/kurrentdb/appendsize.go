package kurrentdb

import (
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
)

// eventSize is the size KurrentDB 24.10.4+ counts for one event against its
// append limits (Event.SizeOnDisk): data + custom metadata + 2 x the length
// of the type in UTF-16 code units (a .NET string's Length).
func eventSize(typ string, data, meta []byte) int {
	return len(data) + len(meta) + 2*utf16Len(typ)
}

// utf16Len is the length of s in UTF-16 code units (a .NET string's Length).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// sizeCheck applies the maximum append event size and the cumulative
// maximum append size to an append's events one at a time, in the real
// server's order (Streams.Append.cs, Streams.BatchAppend.cs AddEvents): the
// event's own size first, then the running total.
type sizeCheck struct {
	maxEvent, maxAppend int
	total               int
}

// add counts one event; it returns the error for the first limit it breaks.
// id names the event in the error, as the path's real server names it.
func (c *sizeCheck) add(typ string, data, meta []byte, id func() string) error {
	n := eventSize(typ, data, meta)
	if n > c.maxEvent {
		return &EventTooLargeError{EventID: id(), Size: n, Max: c.maxEvent}
	}
	c.total += n
	if c.total > c.maxAppend {
		return &AppendTooLargeError{Max: c.maxAppend}
	}
	return nil
}

// protoUUIDText is how the real server's Append names an event id in its
// errors: the proto UUID message's ToString(), which in C# is the message's
// JSON (Google.Protobuf JsonFormatter: "{ " ... " }", int64 as strings,
// zero fields left out; inferred from the library, not seen on a server).
func protoUUIDText(u *shared.UUID) string {
	var b strings.Builder
	switch v := u.GetValue().(type) {
	case *shared.UUID_Structured_:
		var fields []string
		if m := v.Structured.GetMostSignificantBits(); m != 0 {
			fields = append(fields, `"mostSignificantBits": "`+strconv.FormatInt(m, 10)+`"`)
		}
		if l := v.Structured.GetLeastSignificantBits(); l != 0 {
			fields = append(fields, `"leastSignificantBits": "`+strconv.FormatInt(l, 10)+`"`)
		}
		b.WriteString(`{ "structured": `)
		if len(fields) == 0 {
			b.WriteString("{ }")
		} else {
			b.WriteString("{ " + strings.Join(fields, ", ") + " }")
		}
		b.WriteString(" }")
	case *shared.UUID_String_:
		b.WriteString(`{ "string": ` + strconv.Quote(v.String_) + " }")
	default:
		b.WriteString("{ }")
	}
	return b.String()
}
