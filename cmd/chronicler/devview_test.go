//go:build !release

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/app"
)

// TestLiveViewLegend: the first line of the live view comes after a legend
// that explains each figure, how to stop and where to look; later lines
// come without it.
func TestLiveViewLegend(t *testing.T) {
	var out bytes.Buffer
	v := newLiveView(&out, func() app.Counts { return app.Counts{Captured: 12} })
	v.print()
	v.print()
	text := out.String()
	for _, want := range []string{"Ctrl-C to stop", "captured ", "stored ", "published ", "promotion rule", "dead-lettered", "kafka address", "kurrentdb address"} {
		if !strings.Contains(text, want) {
			t.Errorf("the legend does not say %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "Ctrl-C to stop"); n != 1 {
		t.Errorf("legend printed %d times, want once", n)
	}
	if n := strings.Count(text, "captured      12"); n != 2 {
		t.Errorf("%d lines with the captured count, want 2:\n%s", n, text)
	}
}
