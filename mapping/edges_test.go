package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// TestBinaryMessageContentStaysBytes (issue 20, item 6): message.bytes is
// a message's content as bytes, written base64, so binary content
// (\x00ff00) arrives whole; a rule reading message.content of content that
// is not UTF-8 text fails (its change is dead-lettered) instead of storing
// "\u0000\ufffd\u0000". Text content reads as text, as before.
func TestBinaryMessageContentStaysBytes(t *testing.T) {
	rs := mustLoad(t, `
capture:
  - name: raw
    on: [message]
    prefix: app.
    stream: {category: msg, id: message.prefix}
    type: Raw
    data: {bytes: message.bytes}
  - name: text
    on: [message]
    prefix: app.
    stream: {category: msg, id: message.prefix}
    type: Text
    data: {text: message.content}
  - name: whole
    on: [message]
    prefix: app.
    stream: {category: msg, id: message.prefix}
    type: Whole
    data: message
`)
	msg := func(content []byte) *contract.Change {
		return &contract.Change{Op: contract.OpMessage, Message: &contract.Message{Prefix: "app.x", Content: content, Transactional: true}}
	}
	out, err := rs.Capture(msg([]byte{0x00, 0xff, 0x00}), nil)
	var failed EvalErrors
	if !errors.As(err, &failed) || len(failed) != 2 || failed[0].Rule != "text" || failed[1].Rule != "whole" ||
		!errors.Is(failed[0].Cause, ErrBinaryContent) || !errors.Is(failed[1].Cause, ErrBinaryContent) {
		t.Fatalf("binary content: err = %v; want rules text and whole to fail with ErrBinaryContent", err)
	}
	if len(out) != 1 || string(out[0].Data) != `{"bytes":"AP8A"}` || out[0].Index != 0 {
		t.Fatalf("binary content: events %+v; want raw's {\"bytes\":\"AP8A\"} (base64 of 00 ff 00)", out)
	}

	out, err = rs.Capture(msg([]byte("héllo")), nil)
	if err != nil || len(out) != 3 {
		t.Fatalf("text content: %d events, %v; want 3", len(out), err)
	}
	got := []string{string(out[0].Data), string(out[1].Data), string(out[2].Data)}
	want := []string{`{"bytes":"aMOpbGxv"}`, `{"text":"héllo"}`,
		`{"bytes":"aMOpbGxv","content":"héllo","prefix":"app.x","transactional":true}`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("text content: %q\nwant %q", got, want)
	}
}

// TestGapsNameTheRulesASchemaChangeBreaks (issue 20, item 5): loaded with
// Drift against a table whose column a was renamed, the rules load; Gaps
// names each rule reading a (as new.a, old.a, key.a, or the whole row) with
// where it reads it, and CaptureExcept fails exactly those rules. Without
// Drift the load fails as before.
func TestGapsNameTheRulesASchemaChangeBreaks(t *testing.T) {
	const rules = `
capture:
  - name: reads-a
    table: public.t
    on: [insert, update]
    stream: {category: t, id: new.id}
    type: A
    data: {a: new.a}
  - name: reads-b
    table: public.t
    on: [insert, update]
    stream: {category: t, id: new.id}
    type: B
    data: {b: new.b}
  - name: whole-row
    table: public.t
    on: [insert]
    stream: {category: t, id: new.id}
    type: Row
    data: new
  - name: other-table
    table: public.u
    on: [insert]
    stream: {category: u, id: new.id}
    type: U
    data: {a: new.a}
`
	then := Catalogue{
		"public.t": {Columns: []Column{{Name: "id", Type: "int4", NotNull: true}, {Name: "a", Type: "int4"}, {Name: "b", Type: "text"}}},
		"public.u": {Columns: []Column{{Name: "id", Type: "int4", NotNull: true}, {Name: "a", Type: "int4"}}},
	}
	now := Catalogue{
		"public.t": {Columns: []Column{{Name: "id", Type: "int4", NotNull: true}, {Name: "a2", Type: "int4"}, {Name: "b", Type: "text"}}},
		"public.u": then["public.u"],
	}
	if _, err := LoadBytes("r.yaml", []byte(rules), Options{Catalogue: now}); err == nil {
		t.Fatal("without Drift, a rule reading a missing column loaded")
	}
	rs, err := LoadBytes("r.yaml", []byte(rules), Options{Catalogue: now, Drift: true})
	if err != nil {
		t.Fatalf("with Drift: %v", err)
	}
	gaps := rs.Gaps("public.t", []string{"id", "a2", "b"})
	if len(gaps) != 1 || gaps[0].Rule != "reads-a" || !reflect.DeepEqual(gaps[0].Columns, []string{"a"}) || gaps[0].At != "r.yaml:8:19" {
		t.Fatalf("Gaps after the rename, loaded against the new table = %+v; want reads-a reading a at r.yaml:8:19", gaps)
	}

	// Loaded before the rename: the whole-row rule read a too.
	rs, err = LoadBytes("r.yaml", []byte(rules), Options{Catalogue: then, Drift: true})
	if err != nil {
		t.Fatal(err)
	}
	if g := rs.Gaps("public.t", []string{"id", "a", "b"}); len(g) != 0 {
		t.Fatalf("Gaps before the rename = %+v; want none", g)
	}
	gaps = rs.Gaps("public.t", []string{"id", "a2", "b"})
	if len(gaps) != 2 || gaps[0].Rule != "reads-a" || gaps[1].Rule != "whole-row" || !reflect.DeepEqual(gaps[1].Columns, []string{"a"}) {
		t.Fatalf("Gaps after the rename, loaded before = %+v; want reads-a and whole-row", gaps)
	}
	if g := rs.Gaps("public.u", []string{"id", "a"}); len(g) != 0 {
		t.Fatalf("public.u has its columns: Gaps = %+v", g)
	}

	broken := map[string]bool{"reads-a": true, "whole-row": true}
	ch := insert("t", map[string]any{"id": int64(1), "a2": int64(5), "b": "x"})
	out, err := rs.CaptureExcept(ch, nil, func(rule string) error {
		if broken[rule] {
			return ErrSchemaGap
		}
		return nil
	})
	var failed EvalErrors
	if !errors.As(err, &failed) || len(failed) != 2 || failed[0].Rule != "reads-a" || failed[1].Rule != "whole-row" || !errors.Is(failed[0].Cause, ErrSchemaGap) {
		t.Fatalf("CaptureExcept: err = %v; want reads-a and whole-row failed with ErrSchemaGap", err)
	}
	if len(out) != 1 || out[0].Rule != "reads-b" || out[0].Index != 1 || string(out[0].Data) != `{"b":"x"}` {
		t.Fatalf("CaptureExcept: events %+v; want reads-b's alone, at index 1", out)
	}
}

// TestRetypedColumnIsAGap: a NOT NULL column's type changed since the rule
// was written (ALTER COLUMN qty TYPE text), so new.qty * 2 no longer
// compiles against the table. Without Drift that is a load problem (check
// and reload refuse it); with Drift the rule loads and Gaps names it with
// the type problem and where it is, so capture dead-letters its changes and
// a restart does not fail the pipeline. The other rule is no gap, and a
// problem that typing the columns any does not cure stays a load problem.
func TestRetypedColumnIsAGap(t *testing.T) {
	const rules = `
capture:
  - name: doubles-qty
    table: public.t
    on: [insert]
    stream: {category: t, id: new.id}
    type: Doubled
    data: {twice: new.qty * 2}
  - name: reads-id
    table: public.t
    on: [insert]
    stream: {category: seen, id: new.id}
    type: Seen
    data: {id: new.id}
`
	then := Catalogue{"public.t": {Columns: []Column{{Name: "id", Type: "int4", NotNull: true}, {Name: "qty", Type: "int4", NotNull: true}}}}
	now := Catalogue{"public.t": {Columns: []Column{{Name: "id", Type: "int4", NotNull: true}, {Name: "qty", Type: "text", NotNull: true}}}}
	rs, err := LoadBytes("r.yaml", []byte(rules), Options{Catalogue: then, Drift: true})
	if err != nil {
		t.Fatal(err)
	}
	if g := rs.Gaps("public.t", []string{"id", "qty"}); len(g) != 0 {
		t.Fatalf("Gaps before the type change = %+v; want none", g)
	}
	if _, err := LoadBytes("r.yaml", []byte(rules), Options{Catalogue: now}); err == nil || !strings.Contains(err.Error(), "r.yaml:8:") {
		t.Fatalf("without Drift, against the retyped table: %v; want a load problem at r.yaml:8", err)
	}
	rs, err = LoadBytes("r.yaml", []byte(rules), Options{Catalogue: now, Drift: true})
	if err != nil {
		t.Fatalf("with Drift, against the retyped table: %v", err)
	}
	gaps := rs.Gaps("public.t", []string{"id", "qty"})
	if len(gaps) != 1 || gaps[0].Rule != "doubles-qty" || len(gaps[0].Columns) != 0 || !strings.HasPrefix(gaps[0].Retyped, "r.yaml:8:") {
		t.Fatalf("Gaps after the type change = %+v; want doubles-qty alone, retyped at r.yaml:8", gaps)
	}
	if s := gaps[0].String(); !strings.Contains(s, `rule "doubles-qty" does not compile against the column types public.t has now`) {
		t.Fatalf("the gap reads %q; want it to name the rule, the table and the type problem", s)
	}

	// Typing the columns any does not cure a problem of another kind.
	bad := strings.Replace(rules, "new.qty * 2", `new.qty * "2"`, 1)
	if _, err := LoadBytes("r.yaml", []byte(bad), Options{Catalogue: now, Drift: true}); err == nil {
		t.Fatal(`new.qty * "2" loaded with Drift; want a load problem (it fails whatever qty's type)`)
	}
}

// TestReadingAGeneratedColumnIsALoadProblem (issue 20, item 7): Postgres
// does not publish generated columns, so a rule reading one is refused at
// load naming it, with Drift too (it is not a renamed column).
func TestReadingAGeneratedColumnIsALoadProblem(t *testing.T) {
	cat := Catalogue{"public.g": {Columns: []Column{{Name: "id", Type: "int4", NotNull: true}, {Name: "a", Type: "int4"}}, Generated: []string{"twice"}}}
	const rule = `
capture:
  - name: reads-twice
    table: public.g
    on: [insert]
    stream: {category: g, id: new.id}
    type: G
    data: {twice: new.twice}
`
	for _, drift := range []bool{false, true} {
		_, err := LoadBytes("r.yaml", []byte(rule), Options{Catalogue: cat, Drift: drift})
		if err == nil || !strings.Contains(err.Error(), `column "twice" of public.g is a generated column`) {
			t.Errorf("Drift %v: load = %v; want a problem naming the generated column twice", drift, err)
		}
	}
}

// TestUnencodableMetadataFailsTheRule: a capture rule whose metadata holds a
// value JSON cannot hold (numeric NaN, a float infinity) fails at Capture,
// with the field named, like the same value in data (its change is
// dead-lettered), instead of returning an event whose metadata the store's
// encoder (contract.AppendMetadata) then refuses, which stopped capture on
// that change.
func TestUnencodableMetadataFailsTheRule(t *testing.T) {
	rs := mustLoad(t, `
capture:
  - name: priced
    table: public.t
    on: [insert]
    stream: {category: t, id: new.id}
    type: Priced
    data: {id: new.id}
    metadata: {tenant: new.tenant, price: new.price, ratio: {of: '1.0 / float(new.id - 1)'}}
`)
	for _, c := range []struct {
		row   map[string]any
		field string
	}{
		{map[string]any{"id": int64(2), "tenant": "acme", "price": json.Number("NaN")}, "metadata.price"},
		{map[string]any{"id": int64(1), "tenant": "acme", "price": json.Number("1.50")}, "metadata.ratio.of"}, // 1/0.0: +Inf
	} {
		out, err := rs.Capture(insert("t", c.row), nil)
		var es EvalErrors
		if !errors.As(err, &es) || len(es) != 1 || es[0].Field != c.field || !errors.Is(err, contract.ErrNotEncodable) || len(out) != 0 {
			var meta []byte
			if len(out) == 1 {
				src := contract.Source{Slot: "s"}
				_, merr := contract.AppendMetadata(nil, &src, out[0].Metadata)
				meta = []byte(fmt.Sprint(merr))
			}
			t.Errorf("%v: Capture = %d events (metadata encoding: %s), %v; want one failure of %s, ErrNotEncodable", c.row["price"], len(out), meta, err, c.field)
		}
	}
	out, err := rs.Capture(insert("t", map[string]any{"id": int64(2), "tenant": "acme", "price": json.Number("1.50")}), nil)
	if err != nil || len(out) != 1 || out[0].Metadata["price"] != json.Number("1.50") {
		t.Fatalf("an encodable row: %v, %v", out, err)
	}
}

// TestJSONColumnIsItsText (issue 20, item 7): a json column reaches the
// event as its text, key order and duplicate keys included; fromJSON reads
// a member of it exactly (every digit); reading a member of the column
// itself is a load problem that names the column and the fix.
func TestJSONColumnIsItsText(t *testing.T) {
	cat := Catalogue{"public.d": {Columns: []Column{{Name: "id", Type: "int4", NotNull: true}, {Name: "doc", Type: "json"}}}}
	const rules = `
capture:
  - name: doc
    table: public.d
    on: [insert]
    stream: {category: d, id: new.id}
    type: Doc
    data: {doc: new.doc, a: fromJSON(new.doc).a, n: fromJSON(new.doc).n, none: fromJSON(new.none)}
`
	rs, err := LoadBytes("r.yaml", []byte(strings.Replace(rules, ", none: fromJSON(new.none)", "", 1)), Options{Catalogue: cat})
	if err != nil {
		t.Fatal(err)
	}
	const doc = `{"b": 1, "a": 2, "a": 3, "n": 123456789012345678901234567890.5}`
	out, err := rs.Capture(insert("d", map[string]any{"id": int64(1), "doc": doc}), nil)
	if err != nil || len(out) != 1 {
		t.Fatalf("Capture = %v, %v; want one event", out, err)
	}
	want := `{"doc":"{\"b\": 1, \"a\": 2, \"a\": 3, \"n\": 123456789012345678901234567890.5}","a":3,"n":123456789012345678901234567890.5}`
	if got := string(out[0].Data); got != want {
		t.Errorf("data = %s\nwant   %s", got, want)
	}
	if _, err := rs.Capture(insert("d", map[string]any{"id": int64(2), "doc": nil}), nil); err == nil {
		t.Error("fromJSON(nil).a: no error; want the rule to fail on a row whose doc is NULL (nil has no members)")
	}

	for _, c := range []struct{ expr, ref, at, hint string }{
		{"new.doc.a", "new.doc", "r.yaml:8:37", "fromJSON(new.doc).a"},
		{`'old.doc["a b"]'`, "old.doc", "r.yaml:8:38", "fromJSON(old.doc)[...]"},
	} {
		bad := strings.Replace(rules, "fromJSON(new.doc).a, n: fromJSON(new.doc).n, none: fromJSON(new.none)", c.expr, 1)
		_, err := LoadBytes("r.yaml", []byte(bad), Options{Catalogue: cat})
		if err == nil || !strings.Contains(err.Error(), c.at) || !strings.Contains(err.Error(), c.ref+" is a json column of public.d") || !strings.Contains(err.Error(), c.hint) {
			t.Errorf("%s: load = %v; want a problem at %s naming the json column and %s", c.expr, err, c.at, c.hint)
		}
	}
}

// TestFromJSONIsExact: fromJSON decodes as capture decodes jsonb, numbers
// with every digit; nil and an unchanged value pass through.
func TestFromJSONIsExact(t *testing.T) {
	for _, c := range []struct {
		in   any
		want any
	}{
		{`{"n": 12345678901234567890, "f": 0.1}`, map[string]any{"n": json.Number("12345678901234567890"), "f": json.Number("0.1")}},
		{[]byte(`[1]`), []any{json.Number("1")}},
		{nil, nil},
		{contract.Unchanged, contract.Unchanged},
	} {
		got, err := fnFromJSON(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("fromJSON(%v) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	for _, in := range []any{`{"a":`, int64(1)} {
		if got, err := fnFromJSON(in); err == nil {
			t.Errorf("fromJSON(%#v) = %#v; want an error", in, got)
		}
	}
}
