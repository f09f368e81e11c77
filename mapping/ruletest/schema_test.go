package ruletest

import (
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/mapping"
)

const schemaRules = `
promote:
  - name: placed
    from: OrderInserted
    topic: shop.orders.v1
    type: shop.order.placed.v1
    when: event.data.total > 0
    value: {orderId: event.data.id, total: event.data.total}
    schema:
      type: object
      additionalProperties: false
      properties:
        orderId: {type: integer}
        total: {type: integer, minimum: 1}
      required: [orderId, total]
`

// TestExpectedValuesKeepTheSchema: an expected integration value that
// violates its rule's schema fails the case with the violation, also when
// the rules produced nothing to compare it with; a value the rule produces
// that violates the schema is a rule failure (what the publisher
// dead-letters).
func TestExpectedValuesKeepTheSchema(t *testing.T) {
	rs, err := mapping.LoadBytes("r.yaml", []byte(schemaRules), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases, probs := Parse("t_test.yaml", []byte(`
tests:
  - name: pass
    stored: [{stream: order-1, type: OrderInserted, data: {id: 1, total: 5}}]
    integration: [{topic: shop.orders.v1, type: shop.order.placed.v1, key: "1", value: {orderId: 1, total: 5}}]
  - name: fixture breaks the contract
    stored: [{stream: order-1, type: OrderInserted, data: {id: 1, total: 5}}]
    integration: [{topic: shop.orders.v1, type: shop.order.placed.v1, key: "1", value: {orderId: "1", total: 5}}]
  - name: fixture breaks the contract where nothing is produced
    stored: [{stream: order-1, type: OrderInserted, data: {id: 1, total: 0}}]
    integration: [{topic: shop.orders.v1, type: shop.order.placed.v1, key: "1", value: {orderId: 1, total: 0}}]
  - name: the rule breaks the contract
    stored: [{stream: order-1, type: OrderInserted, data: {id: x1, total: 5}}]
    integration: []
    errors: [{rule: placed, field: value}]
`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	want := []string{"", `expected integration event 1 (rule placed): value violates the rule's schema (inline at r.yaml:10:7): at /orderId: got string, want integer`,
		`expected integration event 1 (rule placed): value violates the rule's schema (inline at r.yaml:10:7): at /total: minimum: got 0, want 1`, ""}
	for i, c := range cases {
		f := RunCase(rs, c).Failure
		if want[i] == "" && f != "" || want[i] != "" && !strings.Contains(f, want[i]) {
			t.Errorf("%s: failure %q\nwant %q", c.Name, f, want[i])
		}
	}
}
