package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLiveViewLegend: the first line of the live view comes after a legend
// that explains each figure, how to stop and where to look; later lines
// come without it.
func TestLiveViewLegend(t *testing.T) {
	var out bytes.Buffer
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: mCaptured})
	reg.MustRegister(c)
	c.Add(12)
	v := newLiveView(&out, reg)
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
