package mapping

import (
	"errors"
	"reflect"
	"testing"
)

const promoteRules = `
promote:
  - name: contact
    from: [EmailChanged, PhoneChanged]
    topic: crm.contact.v1
    type: crm.contact-changed.v1
    value: {id: event.data.customerId, email: event.data.email}
    headers: {kind: kebab(event.type), rev: event.revision}
  - name: by-category
    category: customer
    when: event.data.customerId > 100
    topic: crm.big.v1
    key: '"k" + text(event.data.customerId)'
    subject: event.category
    type: big.v1
    value: event.data
  - name: order-placed
    scope: transaction
    from: OrderInserted
    topic: shop.orders.v1
    type: shop.order.placed.v1
    key: event.data.orderId
    value:
      orderId: event.data.orderId
      lines: 'map(filter(events, .type == "LineInserted"), .data.sku)'
      count: len(events)
`

func TestPromoteEventRules(t *testing.T) {
	rs := mustLoad(t, promoteRules)
	ev := &StoredEvent{Stream: "customer-142", Revision: 3, Type: "EmailChanged", Data: map[string]any{"customerId": int64(142), "email": "a@x"}}
	out, err := rs.Promote(ev, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Integration{
		{Rule: "contact", Topic: "crm.contact.v1", Key: "142", Type: "crm.contact-changed.v1", Subject: "customer-142",
			Value: []byte(`{"id":142,"email":"a@x"}`), Headers: []Header{{"kind", "email-changed"}, {"rev", "3"}}},
		{Rule: "by-category", Topic: "crm.big.v1", Key: "k142", Type: "big.v1", Subject: "customer",
			Value: []byte(`{"customerId":142,"email":"a@x"}`)},
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("got  %+v\nwant %+v", out, want)
	}
	// Other types and categories: nothing, and no error.
	for _, e := range []*StoredEvent{
		{Stream: "order-1", Type: "EmailChanged2", Data: map[string]any{}},
		{Stream: "customer-5", Type: "Other", Data: map[string]any{"customerId": int64(5)}},
	} {
		if out, err := rs.Promote(e, nil); err != nil || len(out) != 0 {
			t.Errorf("%s %s: %+v %v", e.Stream, e.Type, out, err)
		}
	}
}

func TestPromotePartialFailure(t *testing.T) {
	rs := mustLoad(t, promoteRules)
	// contact works; by-category fails: customerId is a string, > 100 errors.
	ev := &StoredEvent{Stream: "customer-x", Type: "PhoneChanged", Data: map[string]any{"customerId": "x"}}
	out, err := rs.Promote(ev, nil)
	if len(out) != 1 || out[0].Rule != "contact" {
		t.Fatalf("out = %+v", out)
	}
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Rule != "by-category" || ee.Field != "when" || ee.Event != ev {
		t.Fatalf("err = %v", err)
	}
}

func TestPromoteTxOneEventPerTransaction(t *testing.T) {
	rs := mustLoad(t, promoteRules)
	tx := []StoredEvent{
		{Stream: "order-7", Type: "OrderInserted", Data: map[string]any{"orderId": int64(7)}},
		{Stream: "order-7", Type: "LineInserted", Data: map[string]any{"sku": "A"}},
		{Stream: "order-7", Type: "LineInserted", Data: map[string]any{"sku": "B"}},
	}
	out, err := rs.PromoteTx(tx, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("out %+v err %v", out, err)
	}
	if out[0].Key != "7" || string(out[0].Value) != `{"orderId":7,"lines":["A","B"],"count":3}` {
		t.Errorf("got %+v value %s", out[0], out[0].Value)
	}
	// A transaction without an OrderInserted produces nothing.
	if out, err := rs.PromoteTx(tx[1:], nil); err != nil || len(out) != 0 {
		t.Errorf("lines only: %+v %v", out, err)
	}
	// Tx rules do not fire per event.
	if out, _ := rs.Promote(&tx[0], nil); len(out) != 0 {
		t.Errorf("Promote ran a transaction rule: %+v", out)
	}
}

func TestInterest(t *testing.T) {
	got := mustLoad(t, promoteRules).Interest()
	want := Interest{Types: []string{"EmailChanged", "OrderInserted", "PhoneChanged"}, Categories: []string{"customer"}, Transactional: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v want %+v", got, want)
	}
	all := mustLoad(t, "promote:\n  - {name: x, topic: t, type: x, value: event.data}\n").Interest()
	if !all.All || all.Transactional {
		t.Errorf("catch-all rule: %+v", all)
	}
}

func TestTopics(t *testing.T) {
	got := mustLoad(t, promoteRules).Topics()
	if want := []string{"crm.contact.v1", "crm.big.v1", "shop.orders.v1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Topics() = %v; want %v (distinct, in rule order)", got, want)
	}
}

func TestStoredEventNames(t *testing.T) {
	for _, c := range []struct{ stream, cat, id string }{
		{"customer-42", "customer", "42"}, {"order-line-1-2", "order", "line-1-2"}, {"nodash", "nodash", ""},
	} {
		e := StoredEvent{Stream: c.stream}
		if e.Category() != c.cat || e.EntityID() != c.id {
			t.Errorf("%s: %q %q", c.stream, e.Category(), e.EntityID())
		}
	}
}

// TestReadsMetadata: a rule set reads event metadata when an expression
// names a member "metadata", hands an event on whole, computes a member of
// one, or reads $env; a rule set that does not gives the same outputs with
// the metadata left out, so the publisher need not decode it.
func TestReadsMetadata(t *testing.T) {
	rule := func(value string) string {
		return "promote:\n  - name: r\n    from: E\n    topic: t.v1\n    type: t.v1\n    value: " + value + "\n"
	}
	for _, c := range []struct {
		value string
		reads bool
	}{
		{`{id: event.data.id, s: event.stream, k: event.entityId}`, false},
		{`'event.data.id + 1'`, false},
		{`event.data`, false},
		{`{a: event.data.a, m: event.metadata.tenant}`, true},
		{`'event["metadata"]'`, true},
		{`'toJSON(event)'`, true},
		{`'event[event.data.k]'`, true},
		{`'$env.event'`, true},
		{`'event.data.metadata'`, true}, // conservative: any member named metadata
	} {
		rs := mustLoad(t, rule(c.value))
		if got := rs.ReadsMetadata(); got != c.reads {
			t.Errorf("value %s: ReadsMetadata() = %v; want %v", c.value, got, c.reads)
		}
		if c.reads {
			continue
		}
		data := map[string]any{"id": int64(7), "a": "x", "k": "id", "metadata": "d"}
		with := &StoredEvent{Stream: "e-7", Type: "E", Data: data, Metadata: map[string]any{"tenant": "acme"}}
		without := &StoredEvent{Stream: "e-7", Type: "E", Data: data}
		a, aerr := rs.Promote(with, nil)
		b, berr := rs.Promote(without, nil)
		if !reflect.DeepEqual(a, b) || (aerr == nil) != (berr == nil) {
			t.Errorf("value %s: with metadata %+v %v, without %+v %v; want the same", c.value, a, aerr, b, berr)
		}
	}
	// Transaction rules hand every event on (events): they read it.
	if rs := mustLoad(t, promoteRules); !rs.ReadsMetadata() {
		t.Error("rules with len(events) and filter(events, ...): ReadsMetadata() = false")
	}
}
