package main

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// phaseSeries are the per-phase bars: name and value of a run.
func phaseSeries() []struct {
	name string
	get  func(drillRun) float64
	col  color.Color
} {
	return []struct {
		name string
		get  func(drillRun) float64
		col  color.Color
	}{
		{"detect", func(r drillRun) float64 { return r.DetectMS }, color.RGBA{R: 70, G: 110, B: 200, A: 255}},
		{"takeover", func(r drillRun) float64 { return r.TakeoverMS }, color.RGBA{R: 240, G: 160, B: 30, A: 255}},
		{"tunnel back", func(r drillRun) float64 { return r.TunnelBackMS }, color.RGBA{R: 140, G: 70, B: 170, A: 255}},
		{"routes back", func(r drillRun) float64 { return r.RoutesBackMS }, color.RGBA{R: 90, G: 90, B: 90, A: 255}},
	}
}

// drillPlot draws rep as an SVG: for the LAN VIP probe and the tunnel
// probe, one row per run showing when packets got through (green) and
// when they were lost (red), in ms from the failure (dashed line at 0);
// below, the takeover phases of each run as grouped bars.
func drillPlot(w io.Writer, rep *drillReport) error {
	plots, heights, err := drillPlots(rep)
	if err != nil {
		return err
	}
	var total vg.Length
	for _, h := range heights {
		total += h
	}
	return drawStacked(w, vgsvg.New(drillPlotWidth, total), heights, plots...)
}

// drillPlotWidth is the width of the drill plot.
const drillPlotWidth = 10 * vg.Inch

// drillPlots builds the drill plot's panels, top to bottom, with their
// heights.
func drillPlots(rep *drillReport) ([]*plot.Plot, []vg.Length, error) {
	if len(rep.Runs) == 0 {
		return nil, nil, fmt.Errorf("no runs to plot")
	}
	p := pathsOf(siteOr(rep.Site))
	lan, err := timelinePlot(rep, fmt.Sprintf("LAN VIP: %s -> %s (UDP, 1 ms)", p.host, p.lanVIP),
		func(r drillRun) probeTrace { return r.LANTrace })
	if err != nil {
		return nil, nil, err
	}
	tun, err := timelinePlot(rep, fmt.Sprintf("Through the tunnel: %s -> %s (ICMP, 1 ms)", p.host, p.otherAddr),
		func(r drillRun) probeTrace { return r.TunnelTrace })
	if err != nil {
		return nil, nil, err
	}
	// One time axis for both timelines, so they compare at a glance.
	lan.X.Min, lan.X.Max = traceSpan(rep)
	tun.X.Min, tun.X.Max = lan.X.Min, lan.X.Max
	bars, err := phasePlot(rep)
	if err != nil {
		return nil, nil, err
	}
	rows := vg.Points(timelineRow) * vg.Length(float64(len(rep.Runs))+legendRows)
	return []*plot.Plot{lan, tun, bars}, []vg.Length{vg.Inch + rows, vg.Inch + rows, 3.5 * vg.Inch}, nil
}

// timelineRow is the height in points of one run's row in a timeline;
// legendRows the rows left free above them for the legend.
const (
	timelineRow = 22
	legendRows  = 2
)

func siteOr(site string) string {
	if site == "s2" {
		return site
	}
	return "s1"
}

// traceSpan is the time span of every run's probes, in ms from the
// failure.
func traceSpan(rep *drillReport) (from, to float64) {
	for i, r := range rep.Runs {
		for j, t := range []probeTrace{r.LANTrace, r.TunnelTrace} {
			if i+j == 0 || t.FromMS < from {
				from = t.FromMS
			}
			if i+j == 0 || t.ToMS > to {
				to = t.ToMS
			}
		}
	}
	return from, to
}

// drawStacked draws the plots one below the other on c, the first on
// top, and writes c to w.
func drawStacked(w io.Writer, c vg.CanvasWriterTo, heights []vg.Length, plots ...*plot.Plot) error {
	dc := draw.New(c)
	top := dc.Max.Y
	for i, p := range plots {
		r := vg.Rectangle{Min: vg.Point{X: dc.Min.X, Y: top - heights[i]}, Max: vg.Point{X: dc.Max.X, Y: top}}
		p.Draw(draw.Canvas{Canvas: dc.Canvas, Rectangle: r})
		top -= heights[i]
	}
	_, err := c.WriteTo(w)
	return err
}

// timelinePlot draws one probe's delivery, one row per run.
func timelinePlot(rep *drillReport, title string, trace func(drillRun) probeTrace) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title + ", " + rep.Kind + " of the active gateway at 0"
	p.X.Label.Text = "ms from the failure"
	p.Y.Label.Text = "run"
	p.Legend.Top, p.Legend.Left = true, false
	// One meaning per colour, the same in both timelines.
	received, lost := color.RGBA{R: 40, G: 160, B: 60, A: 255}, color.RGBA{R: 220, G: 30, B: 30, A: 255}
	names := make([]string, len(rep.Runs))
	var legend [2]*plotter.Line
	for i, r := range rep.Runs {
		names[i] = fmt.Sprintf("run %d", r.Run)
		gotSegs, lostSegs := deliverySegments(trace(r))
		for _, seg := range gotSegs {
			if err := addSegment(p, seg, float64(i), received, 3, &legend[0]); err != nil {
				return nil, err
			}
		}
		for _, seg := range lostSegs {
			if err := addSegment(p, seg, float64(i), lost, 9, &legend[1]); err != nil {
				return nil, err
			}
		}
	}
	fail, err := plotter.NewLine(plotter.XYs{{X: 0, Y: -0.5}, {X: 0, Y: float64(len(rep.Runs)) - 0.5}})
	if err != nil {
		return nil, err
	}
	fail.Color, fail.Width, fail.Dashes = color.Black, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(fail)
	p.NominalY(names...)
	// Room above the top row for the legend.
	p.Y.Min, p.Y.Max = -0.6, float64(len(rep.Runs))-0.5+legendRows
	for i, name := range []string{"received", "lost"} {
		if legend[i] != nil {
			p.Legend.Add(name, legend[i])
		}
	}
	p.Legend.Add("failure injected", fail)
	return p, nil
}

// addSegment draws [seg[0], seg[1]] at height y; the first line of a kind
// goes into the legend.
func addSegment(p *plot.Plot, seg [2]float64, y float64, c color.Color, width float64, first **plotter.Line) error {
	l, err := plotter.NewLine(plotter.XYs{{X: seg[0], Y: y}, {X: seg[1], Y: y}})
	if err != nil {
		return err
	}
	l.Color, l.Width = c, vg.Points(width)
	p.Add(l)
	if *first == nil {
		*first = l
	}
	return nil
}

// deliverySegments splits a trace into the spans where packets got
// through and those where they were lost.
func deliverySegments(t probeTrace) (got, lost [][2]float64) {
	at := t.FromMS
	for _, w := range t.Lost {
		if w[0] > at {
			got = append(got, [2]float64{at, w[0]})
		}
		lost = append(lost, w)
		at = w[1]
	}
	if t.ToMS > at {
		got = append(got, [2]float64{at, t.ToMS})
	}
	return got, lost
}

// phasePlot draws each run's takeover phases as grouped bars.
func phasePlot(rep *drillReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Takeover phases per run (" + rep.Kind + "): when each was reached, ms from the failure"
	p.X.Label.Text = "run"
	p.Y.Label.Text = "ms from the failure"
	p.Legend.Top, p.Legend.Left = true, true
	series := phaseSeries()
	width := vg.Points(min(18, 360/float64(len(rep.Runs)*len(series))))
	names := make([]string, len(rep.Runs))
	for i, r := range rep.Runs {
		names[i] = fmt.Sprintf("run %d", r.Run)
	}
	for k, s := range series {
		v := make(plotter.Values, len(rep.Runs))
		for i, r := range rep.Runs {
			v[i] = max(s.get(r), 0) // not measured: no bar
		}
		b, err := plotter.NewBarChart(v, width)
		if err != nil {
			return nil, err
		}
		b.Color, b.LineStyle.Width = s.col, 0
		b.Offset = width * vg.Length(float64(k)-float64(len(series)-1)/2)
		p.Add(b)
		p.Legend.Add(s.name, b)
	}
	p.NominalX(names...)
	p.Y.Min = 0
	var top float64
	for _, r := range rep.Runs {
		for _, s := range series {
			top = max(top, s.get(r))
		}
	}
	p.Y.Max = max(top, 1) * 1.4 // room for the legend
	return p, nil
}
