package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot/plotter"
)

// fakeResults are a workload's results shaped like a real run's: capture
// above pg_recvlogical and done in 1 s, full running 5.25 s with its last
// progress line 0.25 s after the one before, and a latency run whose worst
// second reaches 127 ms.
func fakeResults() []Result {
	start := time.Unix(1000, 0)
	series := func(total int64, seconds float64, field func(*progress, int64)) []progress {
		var ps []progress
		steps := int(seconds / 0.1)
		for i := 1; i <= steps; i++ {
			p := progress{T: start.Add(time.Duration(float64(i) * 0.1 * float64(time.Second))).UnixNano()}
			field(&p, total*int64(i)/int64(steps+1))
			ps = append(ps, p)
		}
		p := progress{T: start.Add(time.Duration(seconds * float64(time.Second))).UnixNano()}
		field(&p, total)
		return append(ps, p)
	}
	const changes = 182880
	capture := Result{Scenario: "capture", Workload: "pgbench", Changes: changes, Events: changes, Records: changes / 4,
		Seconds: 1.0, LimitChangesSec: 240000, RecvlogicalChangesSec: 127386, start: start}
	capture.series = series(changes, 1.0, func(p *progress, n int64) { p.Changes = n })
	full := Result{Scenario: "full", Workload: "pgbench", Changes: changes, Events: changes, Records: changes / 4,
		Seconds: 5.25, LimitChangesSec: 240000, RecvlogicalChangesSec: 127386, start: start}
	full.series = series(changes/4, 5.25, func(p *progress, n int64) { p.Records = n })
	lat := Result{Scenario: "latency", Workload: "pgbench-rate", Changes: 120000, Events: 120000, Records: 30000,
		Seconds: 30, RateTxPerSec: 1000, start: start}
	lat.series = series(120000, 30, func(p *progress, n int64) { p.Events = n })
	for i := range 30000 {
		d := 25 * time.Millisecond
		if i == 20000 {
			d = 127 * time.Millisecond
		}
		lat.latencies = append(lat.latencies, d)
		lat.arrivals = append(lat.arrivals, start.Add(time.Duration(i)*time.Millisecond))
	}
	return []Result{capture, full, lat}
}

// TestPlotsShowAllTheirData: every point of every line lies inside the
// axes, with room above the highest; the x axis covers the longest
// scenario; the two references (the limit, pg_recvlogical) are drawn across
// it; legends name what the lines are.
func TestPlotsShowAllTheirData(t *testing.T) {
	results := fakeResults()
	charts := charts(results)
	files := map[string]chart{}
	for _, c := range charts {
		files[c.file] = c
		p, err := c.plot()
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		top := 0.0
		for _, l := range c.lines {
			for _, pt := range l.xy {
				top = max(top, pt.Y)
				if pt.X < p.X.Min || pt.X > p.X.Max || pt.Y < p.Y.Min || pt.Y > p.Y.Max {
					t.Errorf("%s: %s point (%.2f, %.1f) outside the axes x [%.2f, %.2f] y [%.1f, %.1f]", c.file, l.label, pt.X, pt.Y, p.X.Min, p.X.Max, p.Y.Min, p.Y.Max)
				}
			}
			if l.label == "latency" {
				t.Errorf("%s: a line labelled \"latency\"", c.file)
			}
		}
		if c.hist == nil && p.Y.Max < top*1.05 {
			t.Errorf("%s: y axis ends at %.1f, the highest point is %.1f: no room above it", c.file, p.Y.Max, top)
		}
		if p.X.Max < c.xMax {
			t.Errorf("%s: x axis ends at %.2f, before %.2f", c.file, p.X.Max, c.xMax)
		}
	}
	tp, ok := files["throughput-pgbench.png"]
	if !ok {
		t.Fatalf("no pgbench throughput chart: %v", slices.Collect(func(yield func(string) bool) {
			for f := range files {
				yield(f)
			}
		}))
	}
	labels := map[string]line{}
	for _, l := range tp.lines {
		labels[l.label] = l
	}
	for _, want := range []string{"capture", "full", "the limit (backend decode), 240000/s", "pg_recvlogical, 127386/s"} {
		if _, ok := labels[want]; !ok {
			t.Errorf("the pgbench chart has no line %q (has %v)", want, tp.lines)
		}
	}
	if f := labels["full"].xy; f[len(f)-1].X < 5.25 {
		t.Errorf("the full line ends at %.2f s, before the scenario's end 5.25 s", f[len(f)-1].X)
	}
	if g := labels["the limit (backend decode), 240000/s"].xy; g[0].Y != 240000 || g[len(g)-1].X < 5.25 {
		t.Errorf("limit line %v; want 240000/s across the longest scenario", g)
	}
	lt := files["latency-time.png"]
	var goal, maxLine bool
	for _, l := range lt.lines {
		goal = goal || (strings.Contains(l.label, "100 ms") && l.xy[0].Y == 100)
		if l.label == "max" {
			maxLine = slices.ContainsFunc(l.xy, func(p plotter.XY) bool { return p.Y == 127 })
		}
	}
	if !goal || !maxLine {
		t.Errorf("latency chart: 100 ms goal line %v, the 127 ms maximum plotted %v", goal, maxLine)
	}
	rate := files["throughput-pgbench-rate.png"]
	if len(rate.lines) != 1 || !strings.HasPrefix(rate.lines[0].label, "throughput of the latency run (1000 tx/s") {
		t.Errorf("pgbench-rate chart lines %v", rate.lines)
	}

	dir := t.TempDir()
	written, err := writePlots(dir, results)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range written {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}
