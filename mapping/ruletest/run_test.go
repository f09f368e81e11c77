package ruletest

import (
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/mapping"
)

const rules = `
capture:
  - {name: a, table: t, on: [insert], stream: {category: t, id: new.id}, type: A, data: {x: 'new.x * 2'}}
`

func load(t *testing.T) *mapping.RuleSet {
	t.Helper()
	rs, err := mapping.LoadBytes("r.yaml", []byte(rules), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestCasePassesAndFails(t *testing.T) {
	rs := load(t)
	cases, probs := Parse("t_test.yaml", []byte(`
tests:
  - name: pass
    changes: [{op: insert, table: t, new: {id: 1, x: 2}}]
    events: [{stream: t-1, type: A, data: {x: 4}}]
  - name: wrong value
    changes: [{op: insert, table: t, new: {id: 1, x: 2}}]
    events: [{stream: t-1, type: A, data: {x: 5}}]
  - name: expected failure
    changes: [{op: insert, table: t, new: {id: 1, x: oops}}]
    events: []
    errors: [{rule: a, field: data.x}]
  - name: unexpected failure
    changes: [{op: insert, table: t, new: {id: 1, x: oops}}]
    events: []
`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	want := []bool{true, false, true, false}
	for i, c := range cases {
		res := RunCase(rs, c)
		if (res.Failure == "") != want[i] {
			t.Errorf("%s: failure %q", c.Name, res.Failure)
		}
	}
	if f := RunCase(rs, cases[1]).Failure; !strings.Contains(f, `-       "x": 5`) || !strings.Contains(f, `+       "x": 4`) {
		t.Errorf("diff:\n%s", f)
	}
}

func TestParseReportsProblemsWithPositions(t *testing.T) {
	_, probs := Parse("t_test.yaml", []byte(`
tests:
  - name: x
    chnages: []
    events: []
  - name: y
    changes: [{op: upsert, table: t}]
    stored: []
`))
	got := map[int]bool{}
	for _, p := range probs {
		got[p.Line] = true
	}
	for _, line := range []int{3, 4, 6, 7} {
		if !got[line] {
			t.Errorf("no problem at line %d: %v", line, probs)
		}
	}
}
