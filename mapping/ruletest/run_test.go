package ruletest

import (
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

const rules = `
capture:
  - {name: a, table: t, on: [insert], stream: {category: t, id: new.id}, type: A, data: {x: 'new.x * 2'}}
`

func load(t *testing.T, rules string) *mapping.RuleSet {
	t.Helper()
	rs, err := mapping.LoadBytes("r.yaml", []byte(rules), mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestCasePassesAndFails(t *testing.T) {
	rs := load(t, rules)
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

// zonedMetadata is a capture rule whose metadata holds a time in the zone
// its text gives (new.at) and a column passed on as it is (new.point).
const zonedMetadata = `
capture:
  - name: a
    table: t
    on: [insert]
    stream: {category: t, id: new.id}
    type: A
    data: {id: new.id}
    metadata: {at: 'date(new.at, "2006-01-02T15:04:05Z07:00")', point: new.point}
`

// TestMetadataComparedAsStored: a rule's own metadata is compared in the
// form the store holds (contract.AppendMetadata, through AppendJSON): a
// time in UTC, whatever zone the rule computed it in, and a value of a
// type capture does not decode as its text.
func TestMetadataComparedAsStored(t *testing.T) {
	rs := load(t, zonedMetadata)
	cases, probs := Parse("t_test.yaml", []byte(`
tests:
  - name: as stored
    changes: [{op: insert, table: t, new: {id: 1, at: "2024-05-01T12:00:00+02:00"}}]
    events: [{stream: t-1, type: A, data: {id: 1}, metadata: {at: "2024-05-01T10:00:00Z"}}]
`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	c := cases[0]
	c.Changes[0].New["point"] = contract.Unknown{TypeOID: 600, TypeName: "point", Text: "(1,2)"}
	c.Events[0]["metadata"].(map[string]any)["point"] = "(1,2)"
	if res := RunCase(rs, c); res.Failure != "" {
		t.Fatal(res.Failure)
	}
	// What the store holds, for the record: the test above compares with it.
	ev, err := rs.Capture(&c.Changes[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	src := contract.SourceOf(Slot, &c.Changes[0], ev[0].Rule, uint32(ev[0].Index))
	meta, err := contract.AppendMetadata(nil, &src, ev[0].Metadata)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"at":"2024-05-01T10:00:00Z"`, `"point":"(1,2)"`} {
		if !strings.Contains(string(meta), want) {
			t.Errorf("stored metadata %s lacks %s", meta, want)
		}
	}
}

// TestPromotionSeesMetadataAsStored: promotion rules in a rule test see
// event.metadata as the publisher hands it to them, decoded from the stored
// bytes (contract.DecodeJSON): commitTime is its RFC 3339 text, not a Go
// time, and the capture rule's own metadata is in its stored form.
func TestPromotionSeesMetadataAsStored(t *testing.T) {
	rs := load(t, zonedMetadata+`
promote:
  - name: p
    from: A
    topic: t.v1
    type: t.v1
    value: {commit: 'event.metadata.commitTime + "!"', at: 'event.metadata.at + "!"'}
`)
	cases, probs := Parse("t_test.yaml", []byte(`
tests:
  - name: as stored
    tx: {commitTime: "2024-05-01T10:00:00.5+02:00"}
    changes: [{op: insert, table: t, new: {id: 1, at: "2024-05-01T12:00:00+02:00"}}]
    integration: [{topic: t.v1, key: "1", type: t.v1, value: {commit: "2024-05-01T08:00:00.5Z!", at: "2024-05-01T10:00:00Z!"}}]
`))
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if res := RunCase(rs, cases[0]); res.Failure != "" {
		t.Fatal(res.Failure)
	}
}
