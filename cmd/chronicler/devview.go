//go:build !release

package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/app"
)

// liveView prints the flow of a dev run from the app's counts: one line
// rewritten in place on a terminal, periodic lines otherwise.
type liveView struct {
	w      io.Writer
	counts func() app.Counts
	tty    bool
	last   devSummary
	lastT  time.Time
	start  time.Time
}

func newLiveView(w io.Writer, counts func() app.Counts) *liveView {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &liveView{w: w, counts: counts, tty: tty, lastT: now, start: now}
}

func (v *liveView) gather() (devSummary, float64) {
	c := v.counts()
	return devSummary{Captured: c.Captured, Stored: c.Stored, Published: c.Published, Deadlettered: c.DeadLettered}, float64(c.CaptureLag)
}

func (v *liveView) summary() devSummary { s, _ := v.gather(); return s }

func (v *liveView) print() {
	s, lag := v.gather()
	now := time.Now()
	dt := now.Sub(v.lastT).Seconds()
	rate := func(a, b int64) float64 { return float64(a-b) / dt }
	line := fmt.Sprintf("%5.0fs  captured %7d (%4.0f/s)  stored %7d (%4.0f/s)  published %7d (%4.0f/s)  dead-lettered %d  capture lag %s",
		now.Sub(v.start).Seconds(), s.Captured, rate(s.Captured, v.last.Captured), s.Stored, rate(s.Stored, v.last.Stored),
		s.Published, rate(s.Published, v.last.Published), s.Deadlettered, bytesText(lag))
	if v.tty {
		fmt.Fprintf(v.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(v.w, line)
	}
	v.last, v.lastT = s, now
}

// drain waits, up to limit, until the published count stops moving for two
// seconds: the workload has stopped and what it wrote has flowed through.
func (v *liveView) drain(ctx context.Context, limit time.Duration) {
	end := time.Now().Add(limit)
	stable, prev := 0, int64(-1)
	for time.Now().Before(end) && ctx.Err() == nil && stable < 4 {
		time.Sleep(500 * time.Millisecond) // sampling interval of the counters
		s := v.summary()
		if s.Published == prev && s.Stored > 0 {
			stable++
		} else {
			stable = 0
		}
		prev = s.Published
	}
	v.print()
}

func (v *liveView) finish() {
	if v.tty {
		fmt.Fprintln(v.w)
	}
}

func bytesText(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// redactURL hides a password in a connection URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if strings.Contains(s, "password=") {
			return "(connection string with a password)"
		}
		return s
	}
	return u.Redacted()
}
