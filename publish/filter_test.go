package publish_test

import (
	"testing"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish"
)

// TestMatchesInterest: the predicate selects what the publisher's
// subscription filter delivers, for each shape of interest.
func TestMatchesInterest(t *testing.T) {
	ev := func(stream, typ string) *store.Recorded {
		return &store.Recorded{Stream: stream, Type: typ}
	}
	events := []*store.Recorded{
		ev("customer-1", "CustomerRegistered"), // 0
		ev("order-7", "OrderInserted"),         // 1
		ev("chronicler-progress-s", "ChroniclerProgress"),
		ev("$et-X", "$>"), // 3: system
		ev("customers-9", "Other"),
	}
	cases := []struct {
		name string
		in   mapping.Interest
		want []bool
	}{
		{"types", mapping.Interest{Types: []string{"CustomerRegistered"}}, []bool{true, false, false, false, false}},
		{"categories", mapping.Interest{Categories: []string{"customer"}}, []bool{true, false, false, false, false}},
		{"transactional", mapping.Interest{Types: []string{"OrderInserted"}, Transactional: true}, []bool{true, true, true, false, true}},
		{"all", mapping.Interest{All: true}, []bool{true, true, true, false, true}},
		{"types and categories", mapping.Interest{Types: []string{"X"}, Categories: []string{"order"}}, []bool{true, true, true, false, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := publish.MatchesInterest(tc.in)
			for i, e := range events {
				if got := f(e); got != tc.want[i] {
					t.Errorf("%s/%s: %v, want %v", e.Stream, e.Type, got, tc.want[i])
				}
			}
		})
	}
}
