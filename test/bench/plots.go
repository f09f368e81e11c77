package main

import (
	"fmt"
	"image/color"
	"path/filepath"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// line is one labelled line of a plot; a reference line (the limit,
// pg_recvlogical, a goal) is drawn dashed and grey.
type line struct {
	label     string
	xy        plotter.XYs
	reference bool
}

// chart is a plot's content before drawing, so that a test can check what
// it shows: its lines and the axis ranges they are drawn in.
type chart struct {
	file, title, xLabel, yLabel string
	lines                       []line
	hist                        plotter.Values // a histogram instead of lines
	xMax                        float64        // the x axis reaches at least this far
}

// headroom is the space kept above the highest point, so that no line
// touches (or seems cut by) the top of the plot.
const headroom = 1.1

// writePlots draws the charts of results into dir and returns the file
// names.
func writePlots(dir string, results []Result) ([]string, error) {
	var files []string
	for _, c := range charts(results) {
		p, err := c.plot()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.file, err)
		}
		if err := p.Save(18*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, c.file)); err != nil {
			return nil, err
		}
		files = append(files, c.file)
	}
	return files, nil
}

// charts are the plots of results: throughput over time per workload (every
// scenario in changes/s equivalents, with the two references: the limit and
// pg_recvlogical), and the latency run's latency over time (with the goal)
// and its distribution.
func charts(results []Result) []chart {
	var out []chart
	var workloads []string
	for _, r := range results {
		if r.series != nil && !slices.Contains(workloads, r.Workload) {
			workloads = append(workloads, r.Workload)
		}
	}
	for _, wl := range workloads {
		c := chart{file: "throughput-" + wl + ".png", title: "Throughput, workload " + wl,
			xLabel: "seconds since the worker started", yLabel: "changes/s (equivalent)"}
		limit, recv := 0.0, 0.0
		for _, r := range results {
			if r.Workload != wl || len(r.series) == 0 {
				continue
			}
			c.lines = append(c.lines, line{label: scenarioLabel(&r), xy: throughputXY(&r)})
			c.xMax = max(c.xMax, r.Seconds)
			limit = max(limit, r.LimitChangesSec)
			recv = max(recv, r.RecvlogicalChangesSec)
		}
		if limit > 0 {
			c.lines = append(c.lines, line{label: fmt.Sprintf("the limit (backend decode), %.0f/s", limit), xy: flat(limit, c.xMax), reference: true})
		}
		if recv > 0 {
			c.lines = append(c.lines, line{label: fmt.Sprintf("pg_recvlogical, %.0f/s", recv), xy: flat(recv, c.xMax), reference: true})
		}
		out = append(out, c)
	}
	for _, r := range results {
		if len(r.latencies) == 0 {
			continue
		}
		p50, p99, pmax := latencySeries(&r)
		c := chart{file: "latency-time.png", title: fmt.Sprintf("Commit-to-Kafka latency at %d tx/s, per second", r.RateTxPerSec),
			xLabel: "seconds since the warm-up ended", yLabel: "ms", xMax: r.Seconds,
			lines: []line{{label: "p50", xy: p50}, {label: "p99", xy: p99}, {label: "max", xy: pmax}}}
		c.lines = append(c.lines, line{label: fmt.Sprintf("goal: p99 ≤ %d ms", latencyGoalMs), xy: flat(latencyGoalMs, c.xMax), reference: true})
		out = append(out, c)
		h := chart{file: "latency-distribution.png", title: fmt.Sprintf("Commit-to-Kafka latency at %d tx/s: distribution (%d events)", r.RateTxPerSec, len(r.latencies)),
			xLabel: "ms", yLabel: "integration events", hist: make(plotter.Values, len(r.latencies))}
		for i, d := range r.latencies {
			h.hist[i] = ms(d)
		}
		out = append(out, h)
	}
	return out
}

// scenarioLabel names a throughput line: the scenario, or for the latency
// run that the line is its throughput at the rate pgbench offered.
func scenarioLabel(r *Result) string {
	if r.Scenario == "latency" {
		return fmt.Sprintf("throughput of the latency run (%d tx/s offered)", r.RateTxPerSec)
	}
	return r.Scenario
}

// flat is a horizontal line at y from 0 to x.
func flat(y, x float64) plotter.XYs { return plotter.XYs{{X: 0, Y: y}, {X: x, Y: y}} }

// plot draws the chart with axes that hold every point: from 0 to past the
// highest point (headroom) and to at least xMax.
func (c chart) plot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = c.title, c.xLabel, c.yLabel
	p.Legend.Top = true
	if c.hist != nil {
		h, err := plotter.NewHist(c.hist, 60)
		if err != nil {
			return nil, err
		}
		p.Add(h)
	}
	var data []any
	for _, l := range c.lines {
		if !l.reference {
			data = append(data, l.label, l.xy)
		}
	}
	if err := plotutil.AddLines(p, data...); err != nil {
		return nil, err
	}
	for i, l := range c.lines {
		if !l.reference {
			continue
		}
		pl, err := plotter.NewLine(l.xy)
		if err != nil {
			return nil, err
		}
		pl.Color = color.Gray{Y: uint8(60 + 40*(i%3))}
		pl.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(pl)
		p.Legend.Add(l.label, pl)
	}
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max = max(p.X.Max, c.xMax)
	p.Y.Max *= headroom
	p.Legend.Padding = vg.Points(2)
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	return p, nil
}

// throughputXY turns the worker's cumulative counters into a rate over
// half-second windows, in changes/s equivalents: store scenarios count
// events, Kafka scenarios integration events, scaled by the workload's
// changes per event. The last window, which ends when the scenario is done,
// is kept even if it is shorter, so the line reaches the scenario's end.
func throughputXY(r *Result) plotter.XYs {
	count := func(p progress) float64 {
		switch r.Scenario {
		case "capture":
			return float64(p.Changes)
		case "full", "publish":
			return float64(p.Records) * float64(r.Changes) / float64(max(r.Records, 1))
		default:
			return float64(p.Events) * float64(r.Changes) / float64(max(r.Events, 1))
		}
	}
	xy := plotter.XYs{{X: 0, Y: 0}}
	lastT, lastN := r.start, 0.0
	for _, p := range r.series {
		t := time.Unix(0, p.T)
		n := count(p)
		done := int64(n) >= r.Changes
		if dt := t.Sub(lastT).Seconds(); dt >= 0.5 || (done && dt > 0) {
			xy = append(xy, plotter.XY{X: t.Sub(r.start).Seconds(), Y: (n - lastN) / dt})
			lastT, lastN = t, n
		}
		if done { // the rest is idle
			break
		}
	}
	return xy
}

// latencySeries bins the latency run's events by the second they arrived in.
func latencySeries(r *Result) (p50, p99, pmax plotter.XYs) {
	bins := map[int][]time.Duration{}
	last := 0
	for i, at := range r.arrivals {
		s := int(at.Sub(r.start).Seconds())
		bins[s] = append(bins[s], r.latencies[i])
		last = max(last, s)
	}
	for s := 0; s <= last; s++ {
		b := bins[s]
		if len(b) == 0 {
			continue
		}
		slices.Sort(b)
		x := float64(s) + 0.5
		p50 = append(p50, plotter.XY{X: x, Y: ms(quantile(b, 0.5))})
		p99 = append(p99, plotter.XY{X: x, Y: ms(quantile(b, 0.99))})
		pmax = append(pmax, plotter.XY{X: x, Y: ms(b[len(b)-1])})
	}
	return p50, p99, pmax
}
