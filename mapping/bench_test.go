package mapping

import (
	"fmt"
	"strings"
	"testing"
)

// rulesYAML returns n capture rules on n distinct tables t0..t(n-1) and n
// promotion rules on n event types E0..E(n-1).
func rulesYAML(n int, glob bool) string {
	var b strings.Builder
	b.WriteString("capture:\n")
	for i := range n {
		table := fmt.Sprintf("public.t%d", i)
		if glob && i%2 == 1 {
			table = fmt.Sprintf("public.g%d_*", i)
		}
		fmt.Fprintf(&b, "  - name: c%d\n    table: %s\n    on: [insert, update]\n    when: new.balance != 0\n"+
			"    stream: {category: account, id: new.aid}\n    type: E%d\n    data: {aid: new.aid, bid: new.bid, balance: new.balance}\n", i, table, i)
	}
	b.WriteString("promote:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: p%d\n    from: E%d\n    topic: bench.v1\n    type: bench.e%d.v1\n    value: {aid: event.data.aid, balance: event.data.balance}\n", i, i, i)
	}
	return b.String()
}

// BenchmarkCapture evaluates the one matching rule of a change among 1, 50
// and 500 rules (the last table, so a linear scan would pay for all).
func BenchmarkCapture(b *testing.B) {
	for _, n := range []int{1, 50, 500} {
		for _, glob := range []bool{false, true} {
			if glob && n == 1 {
				continue
			}
			name := fmt.Sprintf("rules=%d", n)
			if glob {
				name += "/half-globs"
			}
			b.Run(name, func(b *testing.B) {
				rs := mustLoad(b, rulesYAML(n, glob))
				ch := insert(fmt.Sprintf("t%d", n-1-(n-1)%2), map[string]any{"aid": int64(17), "bid": int64(1), "balance": int64(-250), "filler": "x"})
				dst := make([]Event, 0, 1)
				b.ReportAllocs()
				for b.Loop() {
					out, err := rs.Capture(ch, dst[:0])
					if err != nil || len(out) != 1 {
						b.Fatal(out, err)
					}
				}
			})
		}
	}
}

func BenchmarkPromote(b *testing.B) {
	for _, n := range []int{1, 50, 500} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			rs := mustLoad(b, rulesYAML(n, false))
			ev := &StoredEvent{Stream: "account-17", Type: fmt.Sprintf("E%d", n-1), Data: map[string]any{"aid": int64(17), "balance": int64(-250)}}
			dst := make([]Integration, 0, 1)
			b.ReportAllocs()
			for b.Loop() {
				out, err := rs.Promote(ev, dst[:0])
				if err != nil || len(out) != 1 {
					b.Fatal(out, err)
				}
			}
		})
	}
}

// BenchmarkLoad measures compiling 500 capture and 500 promotion rules.
func BenchmarkLoad(b *testing.B) {
	src := []byte(rulesYAML(500, false))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBytes("bench.yaml", src, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
