package publish_test

import (
	"context"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestNumericsExactOnKafka: numbers stored exactly (as capture stores a
// numeric column: the decimal text) reach Kafka with every digit and their
// scale when a rule passes them through, on the real broker; a rule can
// still compare and compute with them. A json column's text (a string:
// capture keeps its key order and duplicate keys) reaches Kafka unchanged.
func TestNumericsExactOnKafka(t *testing.T) {
	k := stack.StartKafka(t)
	db, n, s := startStore(t)
	const data = `{"id":1,"pi":3.14159265358979323846264338327950288419,"big":99999999999999999999.9999999999,` +
		`"scaled":12.3400,"huge":123456789012345678901234567890,"small":1E-400,"plain":2.5,` +
		`"doc":"{\"b\": 1, \"a\": 2,  \"a\": 3}"}`
	src := contract.Source{Slot: testSlot, Database: "shop", Schema: "public", Table: "t", Op: contract.OpInsert, CommitTime: commitTime(1),
		Pos: contract.Pos{CommitLSN: 1}}
	meta, err := contract.AppendMetadata(nil, &src, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.db.AppendToStream(context.Background(), "amount-1", esdb.AppendToStreamOptions{}, esdb.EventData{
		EventID: uuid.New(), EventType: "AmountSeen", ContentType: esdb.ContentTypeJson, Data: []byte(data), Metadata: meta,
	})
	if err != nil {
		t.Fatal(err)
	}
	rules := loadRulesText(t, n, `
promote:
  - name: amount
    from: [AmountSeen]
    when: event.data.pi > 3.14 && event.data.big >= 1e19
    topic: {{customers}}
    type: amount.v1
    value: {pi: event.data.pi, big: event.data.big, scaled: event.data.scaled, huge: event.data.huge, small: event.data.small,
            twice: event.data.plain * 2, bigger: event.data.huge > event.data.big, rounded: round(event.data.scaled),
            doc: event.data.doc, a: fromJSON(event.data.doc).a}
`)
	r := start(t, config(db, rules, k, n, kafka.ExactlyOnce))
	r.waitThrough(t, res.CommitPosition)
	recs := readTopic(t, k, n.customers)
	if len(recs) != 1 {
		t.Fatalf("%d records; want 1", len(recs))
	}
	want := `{"pi":3.14159265358979323846264338327950288419,"big":99999999999999999999.9999999999,"scaled":12.3400,` +
		`"huge":123456789012345678901234567890,"small":1E-400,"twice":5,"bigger":true,"rounded":12,` +
		`"doc":"{\"b\": 1, \"a\": 2,  \"a\": 3}","a":3}`
	if got := string(recs[0].Value); got != want {
		t.Fatalf("record value\n got %s\nwant %s", got, want)
	}
}
