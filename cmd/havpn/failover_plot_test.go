package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testDrillReport is a two-run drill as `lab failover` would report it.
func testDrillReport() *drillReport {
	rep := &drillReport{Kind: "poweroff", Site: "s1", Runs: []drillRun{
		{Run: 1, Victim: "s1gw1", NewActive: "s1gw2", LANMS: 180, TunnelMS: 210, DetectMS: 160, TakeoverMS: 175,
			TunnelBackMS: 230, RoutesBackMS: 178, StreamSurvived: true, StreamStallMS: 400,
			LANTrace:    probeTrace{FromMS: -500, ToMS: 800, Lost: [][2]float64{{2, 182}}},
			TunnelTrace: probeTrace{FromMS: -500, ToMS: 800, Lost: [][2]float64{{1, 211}}}},
		{Run: 2, Victim: "s1gw2", NewActive: "s1gw1", LANMS: 190, TunnelMS: 250, DetectMS: 170, TakeoverMS: -1,
			TunnelBackMS: 260, RoutesBackMS: 185, StreamWhy: "sender: writing: connection reset by peer",
			LANTrace:    probeTrace{FromMS: -500, ToMS: 900, Lost: [][2]float64{{-400, -399}, {3, 193}}},
			TunnelTrace: probeTrace{FromMS: -500, ToMS: 900, Lost: [][2]float64{{2, 252}, {880, 901}}}},
	}}
	rep.summarize()
	return rep
}

// svgText parses b as XML and returns its root element's name and every
// piece of text in it.
func svgText(t *testing.T, b []byte) (string, []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var root string
	var texts []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = x.Name.Local
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(x)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	return root, texts
}

// TestPlotDrill: the plot of a drill is an SVG with both probes'
// timelines, the failure marker and the four phases, each named in a
// legend, and titled axes in ms.
func TestPlotDrill(t *testing.T) {
	var b bytes.Buffer
	if err := drillPlot(&b, testDrillReport()); err != nil {
		t.Fatal(err)
	}
	root, texts := svgText(t, b.Bytes())
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	for _, want := range []string{"received", "lost", "failure injected", "detect", "takeover", "tunnel back", "routes back",
		"run 1", "run 2", "ms from the failure"} {
		if !slices.Contains(texts, want) {
			t.Errorf("no %q in the plot's text %q", want, texts)
		}
	}
	for _, want := range []string{"LAN VIP: s1host -> 192.168.1.1", "Through the tunnel: s1host -> 192.168.2.10", "Takeover phases per run"} {
		if !slices.ContainsFunc(texts, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no title starting %q in %q", want, texts)
		}
	}
}

func TestPlotDrillFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "drill.svg")
	if err := writeDrillPlot(p, testDrillReport()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if root, _ := svgText(t, b); root != "svg" {
		t.Errorf("%s: root %q", p, root)
	}
	if err := drillPlot(io.Discard, &drillReport{Kind: "kill"}); err == nil {
		t.Error("a report without runs plotted")
	}
	if err := writeDrillPlot(filepath.Join(t.TempDir(), "no", "such", "dir.svg"), testDrillReport()); err == nil {
		t.Error("writing into a missing directory did not fail")
	}
}

// TestPlotDeliverySegments: a trace splits into alternating spans.
func TestPlotDeliverySegments(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tr        probeTrace
		got, lost [][2]float64
	}{
		{name: "nothing lost", tr: probeTrace{FromMS: -5, ToMS: 10}, got: [][2]float64{{-5, 10}}},
		{name: "one window", tr: probeTrace{FromMS: -5, ToMS: 10, Lost: [][2]float64{{1, 4}}},
			got: [][2]float64{{-5, 1}, {4, 10}}, lost: [][2]float64{{1, 4}}},
		{name: "lost at both ends", tr: probeTrace{FromMS: -5, ToMS: 10, Lost: [][2]float64{{-5, -3}, {8, 11}}},
			got: [][2]float64{{-3, 8}}, lost: [][2]float64{{-5, -3}, {8, 11}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, lost := deliverySegments(tc.tr)
			if !slices.Equal(got, tc.got) || !slices.Equal(lost, tc.lost) {
				t.Errorf("got %v lost %v, want %v %v", got, lost, tc.got, tc.lost)
			}
		})
	}
}

// TestPlotSummary: unmeasured phases (-1) stay out of the summary, and
// the table marks them.
func TestPlotSummary(t *testing.T) {
	rep := testDrillReport()
	if s := rep.Summary["takeover_ms"]; s.N != 1 || s.Min != 175 || s.Max != 175 {
		t.Errorf("takeover summary %+v, want only run 1's 175", s)
	}
	if s := rep.Summary["tunnel_back_ms"]; s.N != 2 || s.Min != 230 || s.Max != 260 || s.Median != 260 {
		t.Errorf("tunnel back summary %+v", s)
	}
	if rep.StreamsSurvived != 1 {
		t.Errorf("streams survived %d, want 1", rep.StreamsSurvived)
	}
	tb := &table{}
	drillTable(tb, rep)
	var b bytes.Buffer
	tb.write(&b)
	out := b.String()
	for _, want := range []string{"TAKEOVER ms", "survived", "LOST: sender: writing", "TCP stream survived 1 of 2 runs"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
