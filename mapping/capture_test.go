package mapping

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

func mustLoad(t testing.TB, src string) *RuleSet {
	t.Helper()
	rs, err := LoadBytes("test.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatalf("load:\n%v", err)
	}
	return rs
}

func insert(table string, row map[string]any) *contract.Change {
	return &contract.Change{Op: contract.OpInsert, Database: "app", Schema: "public", Table: table, Key: []string{"id"}, New: row,
		Tx: contract.Tx{XID: 9, CommitLSN: 0x16B3748, CommitTime: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}, LSN: 0x16B3700, Ordinal: 3}
}

const twoRules = `
capture:
  - name: first
    table: public.customers
    on: [insert]
    stream: {category: customer, id: new.id}
    type: CustomerRegistered
    data: {zeta: new.email, alpha: new.id, nested: {b: 1, a: [true, null, 2.5]}, row: new}
  - name: second
    table: public.customers
    on: [insert, update]
    when: new.email != nil
    stream: {category: mail, id: lower(new.email)}
    type: MailSeen
    data: '{"id": new.id}'
    metadata: {source: table, txn: tx.xid}
`

func TestCaptureOutputsInRuleOrderWithExactJSON(t *testing.T) {
	rs := mustLoad(t, twoRules)
	ch := insert("customers", map[string]any{"id": int64(42), "email": "A@x.org", "at": time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)})
	dst := make([]Event, 0, 4)
	out, err := rs.Capture(ch, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("got %d events, want 2", len(out))
	}
	e := out[0]
	if e.Rule != "first" || e.Index != 0 || e.Stream != "customer-42" || e.Category != "customer" || e.ID != "42" || e.Type != "CustomerRegistered" {
		t.Errorf("event 0 = %+v", e)
	}
	wantData := `{"zeta":"A@x.org","alpha":42,"nested":{"b":1,"a":[true,null,2.5]},"row":{"at":"2024-01-02T03:04:05Z","email":"A@x.org","id":42}}`
	if string(e.Data) != wantData {
		t.Errorf("data\n got %s\nwant %s", e.Data, wantData)
	}
	e = out[1]
	if e.Rule != "second" || e.Index != 1 || e.Stream != "mail-a@x.org" || string(e.Data) != `{"id":42}` {
		t.Errorf("event 1 = %+v data %s", e, e.Data)
	}
	if e.Metadata["source"] != "public.customers" || e.Metadata["txn"] != int64(9) {
		t.Errorf("metadata = %v", e.Metadata)
	}
	// Appends to dst, reusing its array.
	if &out[0] != &dst[:1][0] {
		t.Error("Capture did not append into dst")
	}
}

func TestCaptureUnmatchedProducesNothing(t *testing.T) {
	rs := mustLoad(t, twoRules)
	for _, ch := range []*contract.Change{
		insert("orders", map[string]any{"id": int64(1)}),
		{Op: contract.OpDelete, Schema: "public", Table: "customers", Old: map[string]any{"id": int64(1)}},
		{Op: contract.OpUpdate, Schema: "public", Table: "customers", New: map[string]any{"id": int64(1), "email": nil}},
		{Op: contract.OpMessage, Message: &contract.Message{Prefix: "x"}},
		{Op: 0},
	} {
		out, err := rs.Capture(ch, nil)
		if err != nil || len(out) != 0 {
			t.Errorf("%v on %s: got %d events, err %v; want none", ch.Op, ch.Table, len(out), err)
		}
	}
}

// A change matching rules A, B and C where B fails: the caller gets A's and
// C's events and B's error, with the rule, the field, the change and the cause.
func TestCapturePartialFailureKeepsOtherOutputs(t *testing.T) {
	rs := mustLoad(t, `
capture:
  - {name: a, table: t, on: [insert], stream: {category: t, id: new.id}, type: A, data: {x: new.x}}
  - {name: b, table: t, on: [insert], stream: {category: t, id: new.id}, type: B, data: {y: 'new.x * 2'}}
  - {name: c, table: t, on: [insert], stream: {category: t, id: new.id}, type: C, data: {z: 1}}
`)
	ch := insert("t", map[string]any{"id": int64(1), "x": "not a number"})
	out, err := rs.Capture(ch, nil)
	if len(out) != 2 || out[0].Rule != "a" || out[1].Rule != "c" || out[1].Index != 2 {
		t.Fatalf("events = %+v, want a and c", out)
	}
	var ee *EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %T %v, want *EvalError", err, err)
	}
	if ee.Rule != "b" || ee.Field != "data.y" || ee.Change != ch || ee.Cause == nil {
		t.Errorf("EvalError = %+v", ee)
	}
	var all EvalErrors
	if !errors.As(err, &all) || len(all) != 1 {
		t.Errorf("EvalErrors = %v", all)
	}
}

func TestCaptureRuntimeErrorKinds(t *testing.T) {
	rs := mustLoad(t, `
capture:
  - {name: r, table: t, on: [insert], stream: {category: t, id: new.id}, type: T, data: {x: new.x}}
`)
	cases := []struct {
		name  string
		row   map[string]any
		field string
		cause error
	}{
		{"null id", map[string]any{"id": nil}, "stream.id", ErrResultType},
		{"empty id", map[string]any{"id": ""}, "stream.id", ErrEmptyResult},
		{"map id", map[string]any{"id": map[string]any{}}, "stream.id", ErrResultType},
		{"unchanged value", map[string]any{"id": int64(1), "x": contract.Unchanged}, "data.x", ErrUnchangedValue},
		{"NaN", map[string]any{"id": int64(1), "x": nanValue()}, "data.x", ErrNotEncodable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := rs.Capture(insert("t", c.row), nil)
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Field != c.field || !errors.Is(err, c.cause) {
				t.Fatalf("err = %v, want field %s cause %v", err, c.field, c.cause)
			}
		})
	}
}

func nanValue() float64 { z := 0.0; return z / z }

func TestCaptureUnchangedPolicies(t *testing.T) {
	rule := func(policy string) string {
		return `
capture:
  - name: r
    table: t
    on: [update]
    stream: {category: t, id: new.id}
    type: T
    data: {body: new.body, kept: 'coalesce(new.body, old.body)', flag: unchanged(new.body), row: new}
    unchanged: ` + policy + "\n"
	}
	ch := &contract.Change{Op: contract.OpUpdate, Schema: "public", Table: "t",
		New: map[string]any{"id": int64(1), "body": contract.Unchanged},
		Old: map[string]any{"id": int64(1), "body": "old text"}}
	for policy, want := range map[string]string{
		"omit":   `{"kept":"old text","flag":true,"row":{"id":1}}`,
		"marker": `{"body":{"$unchanged":true},"kept":"old text","flag":true,"row":{"body":{"$unchanged":true},"id":1}}`,
	} {
		out, err := mustLoad(t, rule(policy)).Capture(ch, nil)
		if err != nil || len(out) != 1 || string(out[0].Data) != want {
			t.Errorf("%s: events %+v err %v\nwant data %s", policy, out, err, want)
		}
	}
	_, err := mustLoad(t, rule("error")).Capture(ch, nil)
	if !errors.Is(err, ErrUnchangedValue) {
		t.Errorf("error policy: err = %v, want ErrUnchangedValue", err)
	}
}

func TestCaptureGlobsMessagesAndDefaultSchema(t *testing.T) {
	rs := mustLoad(t, `
capture:
  - {name: lines, table: 'public.order_*', on: [insert, delete], stream: {category: line, id: 'id(table, coalesce(new.id, old.id))'}, type: L, data: '{"op": op}'}
  - {name: plain, table: order_lines, on: [insert], stream: {category: p, id: new.id}, type: P, data: '{}'}
  - {name: msg, on: [message], prefix: 'app.', stream: {category: m, id: message.prefix}, type: M, data: '{"c": message.content}'}
`)
	out, err := rs.Capture(insert("order_lines", map[string]any{"id": int64(5)}), nil)
	if err != nil || len(out) != 2 || out[0].Stream != "line-public.order_lines:5" || out[1].Rule != "plain" {
		t.Fatalf("insert: %+v %v", out, err)
	}
	out, _ = rs.Capture(&contract.Change{Op: contract.OpDelete, Schema: "public", Table: "order_notes", Old: map[string]any{"id": int64(6)}}, nil)
	if len(out) != 1 || string(out[0].Data) != `{"op":"delete"}` {
		t.Fatalf("delete: %+v", out)
	}
	out, _ = rs.Capture(insert("orders", map[string]any{"id": int64(5)}), nil)
	if len(out) != 0 {
		t.Fatalf("orders matched %+v", out)
	}
	out, _ = rs.Capture(&contract.Change{Op: contract.OpMessage, Message: &contract.Message{Prefix: "app.audit", Content: []byte("hi")}}, nil)
	if len(out) != 1 || out[0].Stream != "m-app.audit" || string(out[0].Data) != `{"c":"hi"}` {
		t.Fatalf("message: %+v", out)
	}
}

// TestCaptureConcurrent runs one rule set from many goroutines over many
// tables (filling the lookup cache concurrently); run with -race.
func TestCaptureConcurrent(t *testing.T) {
	rs := mustLoad(t, `
capture:
  - {name: all, table: 'public.*', on: [insert], stream: {category: t, id: 'id(table, new.id)'}, type: T, data: {id: new.id}}
`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				table := fmt.Sprintf("t%d", (g*7+i)%50)
				out, err := rs.Capture(insert(table, map[string]any{"id": int64(i)}), nil)
				want := fmt.Sprintf("t-public.%s:%d", table, i)
				if err != nil || len(out) != 1 || out[0].Stream != want || string(out[0].Data) != fmt.Sprintf(`{"id":%d}`, i) {
					errs <- fmt.Errorf("goroutine %d: %+v %v, want %s", g, out, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
