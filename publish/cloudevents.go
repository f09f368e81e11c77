package publish

import (
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

// integrationRecord builds the Kafka record of one integration event. id is
// deterministic (stored event id or transaction id, plus the rule), source
// names the slot and rule, at is the source commit time: a replay of the
// same history yields byte-equal records.
func integrationRecord(in *mapping.Integration, id, slot string, at time.Time, topic string) *kgo.Record {
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

// recordSize is what a record costs against the broker's limit, roughly:
// key, value, headers and per-record overhead.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + 64
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}
