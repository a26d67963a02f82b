package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab"
	"github.com/havpn/havpn/internal/lab/labtest"
)

// outageLimitMS is the most a failover may interrupt traffic in these tests.
const outageLimitMS = 5000

// dumpLogsOnFailure logs the tail of every daemon's log when t fails, so
// that a failed drill can be understood from the CI output.
func dumpLogsOnFailure(t *testing.T, prefix string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(lab.Dir(prefix), "*gw*.log"))
		for _, f := range logs {
			b, _ := os.ReadFile(f)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s (tail):\n%s", filepath.Base(f), b)
		}
	})
}

// upLab brings up a lab of the test's own (daemons configured by o; torn
// down, with the daemons' logs dumped on failure, when the test ends) and
// opens it.
func upLab(t *testing.T, o lab.DaemonOptions) (*lab.Lab, string) {
	t.Helper()
	labtest.RequireRoot(t)
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { lab.Down(prefix) })
	dumpLogsOnFailure(t, prefix)
	if _, err := lab.Up(context.Background(), lab.Options{Prefix: prefix, Daemons: true, Bin: havpnBin(t), Daemon: o}); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Open(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return l, prefix
}

// activeOf returns the site's active gateway, waiting up to 10 s until
// exactly one of the two reports active.
func activeOf(t *testing.T, l *lab.Lab, site string) string {
	t.Helper()
	a, err := settledActive(context.Background(), l, site, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestFailoverInLab: the lab's daemons elect one active gateway per site,
// which holds the VIPs and the tunnel; s1host reaches s2host through it;
// when site 1's active gateway loses power the other takes over the LAN VIP
// and the tunnel within outageLimitMS, and the old one rejoins as standby
// when powered on.
func TestFailoverInLab(t *testing.T) {
	l, _ := upLab(t, lab.DaemonOptions{})
	ctx := context.Background()
	activeOf(t, l, "s1")
	activeOf(t, l, "s2")

	// The tunnel is keyed by IKEv2 with the lab's certificates: no static keys.
	sock, _ := l.Socket(activeOf(t, l, "s1"))
	out, errOut, code := runCLI(t, "--socket", sock, "sas", "-o", "json")
	var sas struct {
		Running bool `json:"running"`
		SAs     []struct {
			State    string `json:"state"`
			RemoteID string `json:"remote_id"`
			Children []struct {
				Mode string `json:"mode"`
			} `json:"children"`
		} `json:"sas"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for json.Unmarshal([]byte(out), &sas) != nil || len(sas.SAs) == 0 || sas.SAs[0].State != "ESTABLISHED" {
		if time.Now().After(deadline) {
			t.Fatalf("no established IKE SA on s1's active gateway: exit %d %s %s", code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
		out, errOut, code = runCLI(t, "--socket", sock, "sas", "-o", "json")
	}
	if sa := sas.SAs[0]; sa.RemoteID != "@site2.lab.havpn.test" || len(sa.Children) == 0 || sa.Children[0].Mode != "gre" {
		t.Errorf("IKE SA %+v: want remote @site2.lab.havpn.test with a GRE child", sa)
	}

	across := lab.ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.2.10"), ICMP: true,
		Interval: 5 * time.Millisecond, Duration: 500 * time.Millisecond}
	waitReach(t, l, across)

	// Traffic through the tunnel first, so that the ESP counters are far
	// from where a fresh SA starts: without state sync the other site's
	// replay window would drop the new active's packets for a long time.
	warm := across
	warm.Interval, warm.Duration = time.Millisecond, 2*time.Second
	waitReach(t, l, warm)
	time.Sleep(1200 * time.Millisecond) // one statesync interval

	var active1 string
	p, err := l.StartProbe(ctx, lab.ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.1.1"),
		Interval: time.Millisecond, Duration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := l.StartProbe(ctx, lab.ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.2.10"),
		Interval: time.Millisecond, Duration: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	active1 = activeOf(t, l, "s1")
	if err := l.Poweroff(active1); err != nil {
		t.Fatal(err)
	}
	r, rt := p.Wait(), pt.Wait()
	t.Logf("power-off of %s: LAN VIP outage %.1f ms, through the tunnel %.1f ms (windows %+v)",
		active1, r.OutageMS, rt.OutageMS, rt.Windows)
	// Issue 8's first, loose bound; on an idle machine both are about
	// 150-200 ms (bench/RESULTS.md), but CI runs this next to other tests
	// on 2 CPUs, where a stalled daemon adds seconds (issue 5's load work).
	if r.Received == 0 || r.OutageMS > outageLimitMS {
		t.Errorf("LAN VIP outage %.1f ms (received %d), want under %d ms", r.OutageMS, r.Received, outageLimitMS)
	}
	if rt.Received == 0 || rt.OutageMS > outageLimitMS || len(rt.Windows) > 1 {
		t.Errorf("through the tunnel: outage %.1f ms in %d windows (received %d), want one under %d ms",
			rt.OutageMS, len(rt.Windows), rt.Received, outageLimitMS)
	}
	if now := activeOf(t, l, "s1"); now == active1 {
		t.Fatalf("%s still active after power-off", now)
	}
	if err := l.Poweron(ctx, active1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if now := activeOf(t, l, "s1"); now == active1 {
		t.Errorf("%s took over again after power-on; with auto_failback off it should rejoin as standby", active1)
	}
}

// waitReach waits until a probe gets through without loss.
func waitReach(t *testing.T, l *lab.Lab, o lab.ProbeOptions) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := l.Probe(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent > 0 && r.Lost == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s -> %s: last probe lost %d of %d", o.From, o.To, r.Lost, r.Sent)
		}
	}
}

// TestLabFailoverCommand runs `havpn lab failover --poweroff s1 --runs 2
// --plot`: two drills, each with a real outage (a power-off cannot be
// hitless for the LAN VIP: the deadtime must pass) under the limit, every
// takeover phase measured in order, the TCP stream surviving, a summary,
// and the plot written.
func TestLabFailoverCommand(t *testing.T) {
	_, prefix := upLab(t, lab.DaemonOptions{})
	svg := filepath.Join(t.TempDir(), "drill.svg")
	out, errOut, code := runCLI(t, "lab", "--prefix", prefix, "failover", "--poweroff", "s1", "--runs", "2", "--plot", svg, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	var rep drillReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, r := range rep.Runs {
		t.Logf("run %d: %s -> %s: LAN %.1f tunnel %.1f detect %.1f takeover %.1f tunnel back %.1f routes back %.1f ms; stream survived %v (stall %.1f ms) %s %s",
			r.Run, r.Victim, r.NewActive, r.LANMS, r.TunnelMS, r.DetectMS, r.TakeoverMS, r.TunnelBackMS, r.RoutesBackMS,
			r.StreamSurvived, r.StreamStallMS, r.StreamWhy, r.Note)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].Victim == rep.Runs[0].NewActive {
		t.Fatalf("runs %+v", rep.Runs)
	}
	for _, r := range rep.Runs {
		checkDrillRun(t, r)
	}
	for _, k := range []string{"lan_vip_outage_ms", "detect_ms", "takeover_ms", "tunnel_back_ms", "routes_back_ms", "stream_stall_ms"} {
		if s := rep.Summary[k]; s.N != 2 || s.Max < s.Min || s.Median == 0 {
			t.Errorf("summary of %s %+v", k, s)
		}
	}
	checkDrillSVG(t, svg)
	if _, errOut, code := runCLI(t, "lab", "--prefix", prefix, "failover", "s1"); code != exitUsage {
		t.Errorf("failover without a kind: exit %d %s", code, errOut)
	}
}

// checkDrillRun checks one power-off drill: real outages under the limit,
// the phases in their order (detect, then takeover; routes and the tunnel
// back after the takeover began) and the stream alive.
func checkDrillRun(t *testing.T, r drillRun) {
	t.Helper()
	if r.LANMS <= 0 || r.LANMS > outageLimitMS || r.TunnelMS <= 0 || r.TunnelMS > outageLimitMS {
		t.Errorf("run %d: LAN VIP %.1f ms, tunnel %.1f ms; want a real outage under %d ms", r.Run, r.LANMS, r.TunnelMS, outageLimitMS)
	}
	if r.DetectMS <= 0 || r.TakeoverMS < r.DetectMS || r.TakeoverMS > outageLimitMS {
		t.Errorf("run %d: detect %.1f ms, takeover %.1f ms; want 0 < detect <= takeover < %d", r.Run, r.DetectMS, r.TakeoverMS, outageLimitMS)
	}
	for name, v := range map[string]float64{"routes back": r.RoutesBackMS, "tunnel back": r.TunnelBackMS} {
		if v < r.DetectMS || v > outageLimitMS {
			t.Errorf("run %d: %s at %.1f ms; want after detection (%.1f ms), under %d ms", r.Run, name, v, r.DetectMS, outageLimitMS)
		}
	}
	if !r.StreamSurvived || r.StreamStallMS <= 0 {
		t.Errorf("run %d: TCP stream survived %v (%s), stall %.1f ms", r.Run, r.StreamSurvived, r.StreamWhy, r.StreamStallMS)
	}
	if len(r.LANTrace.Lost) == 0 || r.LANTrace.FromMS >= 0 || r.LANTrace.ToMS <= r.LANMS {
		t.Errorf("run %d: LAN VIP trace %+v does not span the outage", r.Run, r.LANTrace)
	}
}

// checkDrillSVG checks that --plot wrote an SVG with both runs.
func checkDrillSVG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("--plot: %v", err)
	}
	root, texts := svgText(t, b)
	if root != "svg" || !slices.Contains(texts, "run 2") || !slices.Contains(texts, "routes back") {
		t.Errorf("%s: root %q, texts %q", path, root, texts)
	}
}
