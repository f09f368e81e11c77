package kafka

import (
	"encoding/json"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/mapping"
)

// CloudEvents 1.0 Kafka protocol binding, binary content mode, header names.
const (
	HeaderSpecVersion = "ce_specversion"
	HeaderID          = "ce_id"
	HeaderSource      = "ce_source"
	HeaderType        = "ce_type"
	HeaderTime        = "ce_time"
	HeaderSubject     = "ce_subject"
	HeaderContentType = "content-type"
)

// IntegrationRecord builds the Kafka record of one integration event
// (CloudEvents binary mode, JSON value, the rule's key and headers). id is
// deterministic (stored event id or transaction id, plus the rule), source
// names the slot and rule, at is the source commit time: a replay of the
// same history yields byte-equal records.
func IntegrationRecord(in *mapping.Integration, id, slot string, at time.Time, topic string) *kgo.Record {
	if topic == "" {
		topic = in.Topic
	}
	source := "chronicler/" + in.Rule
	if slot != "" {
		source = "chronicler/" + slot + "/" + in.Rule
	}
	h := make([]kgo.RecordHeader, 0, 7+len(in.Headers))
	h = append(h,
		kgo.RecordHeader{Key: HeaderSpecVersion, Value: []byte("1.0")},
		kgo.RecordHeader{Key: HeaderID, Value: []byte(id + "/" + in.Rule)},
		kgo.RecordHeader{Key: HeaderSource, Value: []byte(source)},
		kgo.RecordHeader{Key: HeaderType, Value: []byte(in.Type)},
		kgo.RecordHeader{Key: HeaderTime, Value: []byte(at.UTC().Format(time.RFC3339Nano))},
		kgo.RecordHeader{Key: HeaderSubject, Value: []byte(in.Subject)},
		kgo.RecordHeader{Key: HeaderContentType, Value: []byte("application/json")},
	)
	for _, x := range in.Headers {
		h = append(h, kgo.RecordHeader{Key: x.Key, Value: []byte(x.Value)})
	}
	return &kgo.Record{Topic: topic, Key: []byte(in.Key), Value: in.Value, Headers: h}
}

// RecordSize is what a record costs against the broker's limit, roughly:
// key, value, headers and per-record overhead.
func RecordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + 64
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

// Dead-letter record headers (the value is a JSON document with the same
// information and the original events).
const (
	HeaderDLError   = "chronicler_error"
	HeaderDLRule    = "chronicler_rule"
	HeaderDLStream  = "chronicler_stream"
	HeaderDLEventID = "chronicler_event_id"
)

// DeadEvent is a stored event as a publish-side dead letter carries it.
type DeadEvent struct {
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

// NewDeadEvent is the dead-letter form of a stored event: data that is not
// JSON is kept as text, metadata that is not JSON is left out.
func NewDeadEvent(id, stream string, revision, position uint64, typ string, data, metadata []byte) DeadEvent {
	e := DeadEvent{ID: id, Stream: stream, Revision: revision, Position: position, Type: typ}
	if json.Valid(data) {
		e.Data = data
	} else {
		e.DataText = string(data)
	}
	if json.Valid(metadata) {
		e.Metadata = metadata
	}
	return e
}

type deadValue struct {
	Rule   string      `json:"rule,omitempty"`
	Error  string      `json:"error"`
	Events []DeadEvent `json:"events"`
}

// DeadLetterRecord is the dead-letter record for events (one event, or a
// transaction's) that rule could not promote, keyed by the first event's
// stream. When the originals would make it larger than maxBytes, their
// data is left out and marked truncated: the dead letter itself must not be
// rejected.
func DeadLetterRecord(topic string, maxBytes int, rule string, cause error, events []DeadEvent) *kgo.Record {
	v := deadValue{Rule: rule, Error: cause.Error(), Events: events}
	b, _ := json.Marshal(v)
	if len(b)+1024 > maxBytes {
		for i := range v.Events {
			v.Events[i].Data, v.Events[i].DataText, v.Events[i].Truncated = nil, "", true
		}
		b, _ = json.Marshal(v)
	}
	first := events[0]
	msg := cause.Error()
	if len(msg) > 512 {
		msg = msg[:512]
	}
	return &kgo.Record{Topic: topic, Key: []byte(first.Stream), Value: b, Headers: []kgo.RecordHeader{
		{Key: HeaderDLError, Value: []byte(msg)},
		{Key: HeaderDLRule, Value: []byte(rule)},
		{Key: HeaderDLStream, Value: []byte(first.Stream)},
		{Key: HeaderDLEventID, Value: []byte(first.ID)},
		{Key: HeaderContentType, Value: []byte("application/json")},
	}}
}
