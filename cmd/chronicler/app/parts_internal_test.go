package app

import (
	"context"
	"errors"
	"testing"
)

// TestPartErrorsNamedOnce: a part's error is prefixed with the part's name
// unless it names it already ("capture: capture: snapshot ..." before).
func TestPartErrorsNamedOnce(t *testing.T) {
	for _, c := range []struct{ err, want string }{
		{"capture: snapshot initial-0/1 cannot be read", "capture: snapshot initial-0/1 cannot be read"},
		{"replication slot chron is gone", "capture: replication slot chron is gone"},
		{"captured: not a prefix", "capture: captured: not a prefix"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		p := &parts{cancel: cancel}
		cause := errors.New(c.err)
		var failed error
		p.start(ctx, "capture", func(context.Context) error { return cause }, func(err error) { failed = err })
		p.wg.Wait()
		if len(p.errs) != 1 || p.errs[0].Error() != c.want || !errors.Is(p.errs[0], cause) {
			t.Errorf("part error for %q: %v; want %q wrapping it", c.err, p.errs, c.want)
		}
		if failed != cause {
			t.Errorf("failed got %v; want the part's own error", failed)
		}
	}
}
