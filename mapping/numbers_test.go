package mapping

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestDecimalsComputeAndStayExact: decimals (json.Number: numeric columns,
// stored non-integral numbers) pass through a rule with every digit and
// their scale, and rules compare and compute with them like with numbers:
// operators, unary minus, in, the numeric builtins (also with a
// predicate); text and other values are left alone.
func TestDecimalsComputeAndStayExact(t *testing.T) {
	rs := mustLoad(t, `
capture:
  - name: amounts
    table: public.t
    on: [insert]
    when: new.amount > 3 && new.price == 1.5 && new.price != 2
    stream: {category: t, id: new.id}
    type: T
    data:
      amount: new.amount
      scaled: new.scaled
      id: id(new.amount)
      sum: new.price + new.qty
      neg: -new.price
      ratio: new.qty / new.price
      cmp: new.huge > new.amount
      in: new.price in [1.5, 2]
      abs: abs(-new.price)
      round: round(new.scaled)
      max: max(new.price, new.qty)
      total: sum(new.list)
      totalOf: 'sum(new.list, # * 2)'
      text: 'new.name + "!"'
      same: 'new.name == "a"'
promote:
  - name: p
    from: [T]
    topic: t
    type: t.v1
    value: {amount: event.data.amount, twice: event.data.sum - event.data.neg * -1}
`)
	ch := insert("t", map[string]any{"id": int64(1), "amount": json.Number("3.14159265358979323846264338327950288419"), "scaled": json.Number("12.3400"),
		"price": json.Number("1.5"), "qty": int64(3), "huge": json.Number("99999999999999999999.9999999999"), "name": "a",
		"list": []any{json.Number("0.5"), json.Number("2"), int64(1)}})
	out, err := rs.Capture(ch, nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("Capture: %v, %v", out, err)
	}
	want := `{"amount":3.14159265358979323846264338327950288419,"scaled":12.3400,"id":"3.14159265358979323846264338327950288419",` +
		`"sum":4.5,"neg":-1.5,"ratio":2,"cmp":true,"in":true,"abs":1.5,"round":12,"max":3,"total":3.5,"totalOf":7,"text":"a!","same":true}`
	if got := string(out[0].Data); got != want {
		t.Fatalf("data\n got %s\nwant %s", got, want)
	}
	data, err := contract.DecodeJSON(out[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	integ, err := rs.Promote(&StoredEvent{ID: "e", Stream: "t-1", Type: "T", Data: data}, nil)
	if err != nil || len(integ) != 1 {
		t.Fatalf("Promote: %v, %v", integ, err)
	}
	if got, want := string(integ[0].Value), `{"amount":3.14159265358979323846264338327950288419,"twice":3}`; got != want {
		t.Fatalf("promoted value\n got %s\nwant %s", got, want)
	}
}

// TestEveryListedNumberOperatorConverts holds the README's list (### Numbers)
// to the compiler: every operator and builtin it names accepts decimals
// (json.Number) whose type is unknown at load, and a decimal compares by
// value whatever its scale. An entry dropped from numberOperators or
// numberBuiltins fails here.
func TestEveryListedNumberOperatorConverts(t *testing.T) {
	cases := []struct{ expr, want string }{
		{"new.p == 1.5", "true"}, {"new.s == 12.34", "true"}, {"new.p != 1.5", "false"},
		{"new.p < 2", "true"}, {"new.p > 2", "false"}, {"new.p <= 1.5", "true"}, {"new.p >= 1.5", "true"},
		{"new.p + 1", "2.5"}, {"new.p - 1", "0.5"}, {"new.p * 2", "3"}, {"new.q / 8", "0.5"},
		{"new.q % 3", "1"}, {"new.q ** 0.5", "2"}, {"new.p in [1.5, 2]", "true"}, {"-new.p", "-1.5"},
		{"abs(new.n)", "1.5"}, {"ceil(new.p)", "2"}, {"floor(new.p)", "1"}, {"round(new.p)", "2"},
		{"int(new.p)", "1"}, {"float(new.q)", "4"}, {"max(new.p, new.q)", "4"}, {"min(new.p, new.q)", "1.5"},
		{"sum(new.l)", "4.5"}, {"sum(new.l, # * 2)", "9"}, {"mean(new.l)", "1.5"}, {"median(new.l)", "1.5"},
		{"sort(new.l)", "[0.5,1.5,2.5]"},
		// Where it is not applied, number() is: filter keeps the decimals as they are.
		{"filter(new.l, number(#) > 1)", "[2.5,1.5]"},
	}
	var src strings.Builder
	src.WriteString("capture:\n  - name: n\n    table: public.t\n    on: [insert]\n    stream: {category: t, id: new.id}\n    type: T\n    data:\n")
	want := map[string]string{}
	for i, c := range cases {
		k := fmt.Sprintf("c%02d", i)
		fmt.Fprintf(&src, "      %s: '%s'\n", k, c.expr)
		want[k] = c.want
	}
	rs := mustLoad(t, src.String())
	row := map[string]any{"id": int64(1), "p": json.Number("1.5"), "s": json.Number("12.3400"), "q": json.Number("4"),
		"n": json.Number("-1.5"), "l": []any{json.Number("2.5"), json.Number("0.5"), json.Number("1.5")}}
	out, err := rs.Capture(insert("t", row), nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("Capture: %v, %v", out, err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		k := fmt.Sprintf("c%02d", i)
		if string(got[k]) != want[k] {
			t.Errorf("%s = %s; want %s", c.expr, got[k], want[k])
		}
	}
}
