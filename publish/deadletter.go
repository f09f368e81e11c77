package publish

import (
	"encoding/json"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Dead-letter record headers (the value is a JSON document with the same
// information and the original events).
const (
	HeaderDLError   = "chronicler_error"
	HeaderDLRule    = "chronicler_rule"
	HeaderDLStream  = "chronicler_stream"
	HeaderDLEventID = "chronicler_event_id"
)

type dlEvent struct {
	ID        string          `json:"id"`
	Stream    string          `json:"stream"`
	Revision  uint64          `json:"revision"`
	Position  uint64          `json:"position"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data,omitempty"`
	DataText  string          `json:"dataText,omitempty"` // data that is not JSON
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	Truncated bool            `json:"truncated,omitempty"`
}

type dlValue struct {
	Rule   string    `json:"rule,omitempty"`
	Error  string    `json:"error"`
	Events []dlEvent `json:"events"`
}

func (g *engine) dead(dst []output, ev *esdb.RecordedEvent, rule string, cause error) []output {
	return g.deadTx(dst, []*esdb.RecordedEvent{ev}, rule, cause)
}

// deadTx builds a dead-letter record for src (one event, or a transaction's
// events). When the originals would make it too large, their data is left
// out and marked truncated: the dead letter itself must not be rejected.
func (g *engine) deadTx(dst []output, src []*esdb.RecordedEvent, rule string, cause error) []output {
	v := dlValue{Rule: rule, Error: cause.Error()}
	for _, ev := range src {
		e := dlEvent{ID: ev.EventID.String(), Stream: ev.StreamID, Revision: ev.EventNumber, Position: ev.Position.Commit, Type: ev.EventType}
		if json.Valid(ev.Data) {
			e.Data = ev.Data
		} else {
			e.DataText = string(ev.Data)
		}
		if json.Valid(ev.UserMetadata) {
			e.Metadata = ev.UserMetadata
		}
		v.Events = append(v.Events, e)
	}
	b, _ := json.Marshal(v)
	if len(b)+1024 > g.maxBytes {
		for i := range v.Events {
			v.Events[i].Data, v.Events[i].DataText, v.Events[i].Truncated = nil, "", true
		}
		b, _ = json.Marshal(v)
	}
	first := src[0]
	msg := cause.Error()
	if len(msg) > 512 {
		msg = msg[:512]
	}
	rec := &kgo.Record{Topic: g.dlTopic, Key: []byte(first.StreamID), Value: b, Headers: []kgo.RecordHeader{
		{Key: HeaderDLError, Value: []byte(msg)},
		{Key: HeaderDLRule, Value: []byte(rule)},
		{Key: HeaderDLStream, Value: []byte(first.StreamID)},
		{Key: HeaderDLEventID, Value: []byte(first.EventID.String())},
		{Key: HeaderContentType, Value: []byte("application/json")},
	}}
	d := &DeadLetterError{Stream: first.StreamID, EventID: first.EventID.String(), Rule: rule, Position: first.Position.Commit, Cause: cause}
	return append(dst, output{rec: rec, dead: d})
}
