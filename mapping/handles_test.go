package mapping_test

import (
	"testing"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestHandles: a table has rules for an operation when an exact or glob
// rule names it with that operation.
func TestHandles(t *testing.T) {
	rs, err := mapping.LoadBytes("r.yaml", []byte(`capture:
  - name: b
    table: public.b
    on: [insert, snapshot]
    stream: {category: b, id: new.id}
    type: B
    data: {id: new.id}
  - name: logs
    table: public.log_*
    on: [update]
    stream: {category: l, id: new.id}
    type: L
    data: {id: new.id}
`), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		table string
		op    contract.Op
		want  bool
	}{
		{"public.b", contract.OpSnapshot, true},
		{"public.b", contract.OpInsert, true},
		{"public.b", contract.OpUpdate, false},
		{"public.log_1", contract.OpUpdate, true},
		{"public.log_1", contract.OpSnapshot, false},
		{"public.c", contract.OpSnapshot, false},
		{"nodot", contract.OpSnapshot, false},
	} {
		if got := rs.Handles(c.table, c.op); got != c.want {
			t.Errorf("Handles(%s, %s) = %v; want %v", c.table, c.op, got, c.want)
		}
	}
}
