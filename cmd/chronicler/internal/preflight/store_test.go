package preflight

import (
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

// TestStoreAppendLimit: store.max_batch_bytes over KurrentDB's default
// maximum append size is a warning with the fix; at or under it ok; both
// say the server's own setting was not read.
func TestStoreAppendLimit(t *testing.T) {
	for _, tc := range []struct {
		set  int
		want Status
	}{
		{0, OK}, {store.KurrentDefaultMaxAppendSize, OK}, {store.KurrentDefaultMaxAppendSize + 1, Warn}, {4 << 20, Warn},
	} {
		cfg := config.Defaults()
		cfg.Store.MaxBatchBytes = tc.set
		c := &checker{cfg: &cfg, scrub: newScrubber(&cfg)}
		c.storeAppendLimit()
		if len(c.checks) != 1 {
			t.Fatalf("max_batch_bytes %d: %d lines, want 1", tc.set, len(c.checks))
		}
		got := c.checks[0]
		if got.Name != "store append limit" || got.Status != tc.want || !strings.Contains(got.Found, "not readable") {
			t.Errorf("max_batch_bytes %d: %+v; want %s, saying the server's setting was not read", tc.set, got, tc.want)
		}
		if tc.want == Warn && !strings.Contains(got.Fix, "lower store.max_batch_bytes") {
			t.Errorf("max_batch_bytes %d: fix %q names no way out", tc.set, got.Fix)
		}
	}
}
