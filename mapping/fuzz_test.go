package mapping

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, must
// either succeed or return a *LoadError with positioned problems, and a rule
// set it accepts must evaluate a change without panicking and write valid JSON.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../deploy/examples/rules/shop/capture.yaml", "../deploy/examples/rules/shop/promote.yaml",
		"../deploy/examples/rules/pgbench/pgbench.yaml", "testdata/broken/capture.yaml", "testdata/broken/promote.yaml",
		"testdata/broken/syntax.yaml", "testdata/broken/toplevel.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(twoRules))
	f.Add([]byte("capture: &a [*a]\n"))
	f.Add([]byte("capture:\n  - <<: {name: x}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		rs, err := LoadBytes("f.yaml", src, Options{})
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) == 0 {
				t.Fatalf("error %T %v is not a *LoadError with problems", err, err)
			}
			return
		}
		for _, table := range []string{"customers", "orders", "t"} {
			ch := insert(table, map[string]any{"id": int64(1), "email": "a@b", "x": 2.5})
			out, _ := rs.Capture(ch, nil)
			for _, e := range out {
				if !json.Valid(e.Data) {
					t.Fatalf("rule %s wrote invalid JSON %q", e.Rule, e.Data)
				}
			}
		}
		ev := StoredEvent{Stream: "order-1", Type: "OrderInserted", Data: map[string]any{"orderId": int64(1)}}
		if out, _ := rs.Promote(&ev, nil); len(out) > 0 && !json.Valid(out[0].Value) {
			t.Fatalf("invalid JSON %q", out[0].Value)
		}
		_, _ = rs.PromoteTx([]StoredEvent{ev}, nil)
	})
}

// FuzzEval compiles an arbitrary expression as a data field and evaluates it
// on a change whose values come from the fuzzer: no panic, and any output is
// valid JSON; any failure is an *EvalError.
func FuzzEval(f *testing.F) {
	for _, s := range []string{
		`new.a`, `new.a + new.b`, `upper(new.s) + "x"`, `id(new.a, new.s)`, `coalesce(new.n, new.s)`,
		`map(new.l, # * 2)`, `{k: new.a, l: [new.s, new.f]}`, `snake(new.s) + kebab(new.s)`, `new.m.x ?? "d"`,
		`len(new.s) > 3 ? new.a : new.f`, `uuid5(new.s)`, `toJSON(new)`, `text(new.t)`, `repeat(new.s, 3)`,
		`fromJSON(new.s)`, `unchanged(new.u)`, `new.a / new.b`, `int(new.s)`, `date(new.s, "2006-01-02")`,
	} {
		f.Add(s, int64(7), "Hello World", 1.5)
	}
	f.Fuzz(func(t *testing.T, src string, a int64, s string, fl float64) {
		if strings.ContainsAny(src, "\n\r") || len(src) > 300 {
			return
		}
		y := "capture:\n  - name: r\n    table: t\n    on: [insert]\n    stream: {category: t, id: new.a}\n    type: T\n    data:\n      v: |-\n        " + src + "\n"
		rs, err := LoadBytes("f.yaml", []byte(y), Options{})
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoadError", err)
			}
			return
		}
		ch := insert("t", map[string]any{
			"a": a, "b": a % 3, "s": s, "f": fl, "n": nil, "u": contract.Unchanged, "l": []any{a, fl},
			"m": map[string]any{"x": s}, "t": time.Unix(a%1e10, 0).UTC(), "j": json.Number("1.5"),
		})
		out, err := rs.Capture(ch, nil)
		if err != nil {
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Rule != "r" {
				t.Fatalf("error %v is not an *EvalError of rule r", err)
			}
			return
		}
		if len(out) != 1 || !json.Valid(out[0].Data) {
			t.Fatalf("out %+v", out)
		}
	})
}
