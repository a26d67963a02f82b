package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/havpn/havpn/internal/cluster"
	"github.com/havpn/havpn/internal/ctl"
	"github.com/havpn/havpn/internal/daemon"
	"github.com/havpn/havpn/internal/lab"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/havpn/havpn/internal/resources"
	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"
)

// drillRun is one failover drill's outcome. Times are ms from the moment
// the failure was injected; -1 means not measured (the phase was not seen
// before the drill gave up waiting).
type drillRun struct {
	Run       int    `json:"run"`
	Victim    string `json:"victim"`
	NewActive string `json:"new_active"`
	// LANMS and TunnelMS are the longest loss window of the probe to the
	// site's LAN VIP and of the one through the tunnel.
	LANMS    float64 `json:"lan_vip_outage_ms"`
	TunnelMS float64 `json:"tunnel_outage_ms"`
	// DetectMS is when the new active's cluster saw the input that made it
	// take over; TakeoverMS when its resource group had started.
	DetectMS   float64 `json:"detect_ms"`
	TakeoverMS float64 `json:"takeover_ms"`
	// TunnelBackMS is when the first reply through the tunnel after the
	// outage came (0: the tunnel lost nothing); RoutesBackMS when the
	// route to the other site's LAN was in the new active's kernel.
	TunnelBackMS float64 `json:"tunnel_back_ms"`
	RoutesBackMS float64 `json:"routes_back_ms"`
	// StreamSurvived: the TCP stream between the sites' hosts that ran
	// through the drill had no reset and lost no byte (lab.StreamResult).
	StreamSurvived bool    `json:"stream_survived"`
	StreamStallMS  float64 `json:"stream_stall_ms"`
	StreamWhy      string  `json:"stream_why,omitempty"`
	// InjectMS is how long breaking the gateway took (a power-off freezes,
	// unplugs and kills): the failure happened within it, so phases are
	// exact to within this.
	InjectMS float64 `json:"inject_ms"`
	// Note flags a run that did not go as a drill should (the new active
	// took over before the failure, say, because the victim stalled).
	Note string `json:"note,omitempty"`
	// LANTrace and TunnelTrace are the probes' deliveries around the
	// failure, for --plot.
	LANTrace    probeTrace `json:"lan_vip_trace"`
	TunnelTrace probeTrace `json:"tunnel_trace"`
}

// probeTrace is one probe's delivery around the failure, in ms from it:
// packets were sent from FromMS to ToMS, and those in Lost were lost.
type probeTrace struct {
	FromMS float64      `json:"from_ms"`
	ToMS   float64      `json:"to_ms"`
	Lost   [][2]float64 `json:"lost"`
}

// drillReport is `havpn lab failover`'s result.
type drillReport struct {
	Kind            string             `json:"kind"`
	Site            string             `json:"site"`
	Runs            []drillRun         `json:"runs"`
	StreamsSurvived int                `json:"streams_survived"`
	Summary         map[string]summary `json:"summary"`
}

// summary sums up one column over the runs that measured it (N of them).
type summary struct {
	N      int     `json:"n"`
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

// drillColumn is one numeric column of a drill.
type drillColumn struct {
	key, head string
	get       func(drillRun) float64
}

// drillColumns are the numeric columns of a drill, in table order.
func drillColumns() []drillColumn {
	return []drillColumn{
		{"lan_vip_outage_ms", "LAN VIP OUTAGE", func(r drillRun) float64 { return r.LANMS }},
		{"tunnel_outage_ms", "TUNNEL OUTAGE", func(r drillRun) float64 { return r.TunnelMS }},
		{"detect_ms", "DETECT", func(r drillRun) float64 { return r.DetectMS }},
		{"takeover_ms", "TAKEOVER", func(r drillRun) float64 { return r.TakeoverMS }},
		{"tunnel_back_ms", "TUNNEL BACK", func(r drillRun) float64 { return r.TunnelBackMS }},
		{"routes_back_ms", "ROUTES BACK", func(r drillRun) float64 { return r.RoutesBackMS }},
		{"stream_stall_ms", "TCP STALL", func(r drillRun) float64 { return r.StreamStallMS }},
	}
}

func newLabFailoverCmd(g *globals, open func() (*lab.Lab, error)) *cobra.Command {
	var kind, plotFile string
	var runs int
	c := &cobra.Command{
		Use:   "failover --poweroff|--kill|--freeze|--unplug SITE [--runs N] [--plot FILE.svg]",
		Short: "Break a site's active gateway N times while probing; report each run's outage and takeover phases",
		Long: `Each run waits until SITE (s1 or s2) is back to normal (one active, one
standby, the tunnel carrying traffic), then probes the site's LAN VIP and the
other site's host through the tunnel every 1 ms and runs a TCP stream between
the two hosts, breaks the active gateway, and measures, in ms from the
failure: the probes' outages, when the new active detected it and finished
taking over (its status timeline), when the tunnel carried traffic again,
when the route to the other site's LAN was back in the new active's kernel,
and whether the TCP stream survived. Then it repairs the broken gateway
(poweron, restart, thaw, plug). A summary gives min/median/p99/max of every
column; --plot draws the delivery timelines and the phases as SVG.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDrillArgs(kind, args[0], runs); err != nil {
				return err
			}
			l, err := open()
			if err != nil {
				return err
			}
			rep, err := drill(cmd.Context(), l, args[0], kind, runs)
			if err != nil {
				return err
			}
			if plotFile != "" {
				if err := writeDrillPlot(plotFile, rep); err != nil {
					return err
				}
			}
			return render(cmd.OutOrStdout(), g.output, rep, func(t *table) { drillTable(t, rep) })
		},
	}
	for _, k := range []string{"poweroff", "kill", "freeze", "unplug"} {
		c.Flags().BoolFunc(k, "break the active gateway by "+k, func(string) error { kind = k; return nil })
	}
	c.Flags().IntVar(&runs, "runs", 1, "number of drills")
	c.Flags().StringVar(&plotFile, "plot", "", "write the delivery timelines and phases to this SVG file")
	return c
}

func checkDrillArgs(kind, site string, runs int) error {
	switch {
	case kind == "":
		return usageError{fmt.Errorf("one of --poweroff, --kill, --freeze, --unplug is required")}
	case site != "s1" && site != "s2":
		return usageError{fmt.Errorf("site %q: want s1 or s2", site)}
	case runs < 1:
		return usageError{fmt.Errorf("--runs %d: want at least 1", runs)}
	}
	return nil
}

func drill(ctx context.Context, l *lab.Lab, site, kind string, runs int) (*drillReport, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rep := &drillReport{Kind: kind, Site: site}
	for i := 1; i <= runs; i++ {
		r, err := drillOnce(ctx, l, site, kind)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i, err)
		}
		r.Run = i
		rep.Runs = append(rep.Runs, r)
	}
	rep.summarize()
	return rep, nil
}

func (rep *drillReport) summarize() {
	rep.Summary = map[string]summary{}
	rep.StreamsSurvived = 0
	for _, c := range drillColumns() {
		rep.Summary[c.key] = summarize(rep.Runs, c.get)
	}
	for _, r := range rep.Runs {
		if r.StreamSurvived {
			rep.StreamsSurvived++
		}
	}
}

// drillPaths names what a drill watches: the site's host, its LAN VIP,
// the other site's host and LAN.
type drillPaths struct {
	host, otherHost string
	lanVIP          netip.Addr
	otherAddr       netip.Addr // the other host's address
}

func pathsOf(site string) drillPaths {
	n := int(site[1] - '0')
	other := 3 - n
	spec, _ := lab.Spec(fmt.Sprintf("s%dhost", other))
	return drillPaths{
		host: site + "host", otherHost: fmt.Sprintf("s%dhost", other),
		lanVIP: lab.SiteInfo(n).LANVIP.Addr(), otherAddr: spec.Ports[0].Addr.Addr(),
	}
}

// watch is what runs through one drill: two probes and a TCP stream.
type watch struct {
	lan, tun *lab.RunningProbe
	stream   *lab.RunningStream
}

func startWatch(ctx context.Context, l *lab.Lab, p drillPaths) (*watch, error) {
	probe := func(to netip.Addr, icmp bool) (*lab.RunningProbe, error) {
		return l.StartProbe(ctx, lab.ProbeOptions{From: p.host, To: to, ICMP: icmp, Interval: time.Millisecond,
			Duration: -1, Timeline: true})
	}
	w := &watch{}
	var err error
	if w.stream, err = l.StartStream(ctx, lab.StreamOptions{From: p.host, To: p.otherHost}); err != nil {
		return nil, err
	}
	if w.lan, err = probe(p.lanVIP, false); err != nil {
		w.stop()
		return nil, err
	}
	if w.tun, err = probe(p.otherAddr, true); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}

// stop ends whatever runs (after a failed drill).
func (w *watch) stop() {
	for _, p := range []*lab.RunningProbe{w.lan, w.tun} {
		if p != nil {
			p.Stop()
		}
	}
	if w.stream != nil {
		w.stream.Stop()
	}
}

// stopProbes stops both probes at once (each waits its grace for late
// replies) and returns their results.
func (w *watch) stopProbes() (lan, tun *lab.ProbeResult) {
	done := make(chan struct{})
	go func() { defer close(done); lan = w.lan.Stop() }()
	tun = w.tun.Stop()
	<-done
	return lan, tun
}

// drillTail is how long the probes go on once everything is back.
const drillTail = 300 * time.Millisecond

func drillOnce(ctx context.Context, l *lab.Lab, site, kind string) (drillRun, error) {
	p := pathsOf(site)
	victim, err := waitNormal(ctx, l, site, p)
	if err != nil {
		return drillRun{}, err
	}
	w, err := startWatch(ctx, l, p)
	if err != nil {
		return drillRun{}, err
	}
	time.Sleep(500 * time.Millisecond)
	failAt := time.Now()
	if err := breakNode(l, kind, victim); err != nil {
		w.stop()
		return drillRun{}, err
	}
	run := drillRun{Victim: victim, InjectMS: msSince(failAt)}
	run.RoutesBackMS = routesBack(ctx, l, peerOf(victim), p.otherAddr, failAt)
	waitFlowing(w, failAt.Add(time.Duration(max(run.RoutesBackMS, 0)*float64(time.Millisecond))))
	time.Sleep(drillTail)
	lan, tun := w.stopProbes()
	run.NewActive, _ = settledActive(ctx, l, site, settleWait)
	run.DetectMS, run.TakeoverMS = takeoverPhases(ctx, l, run.NewActive, failAt)
	run.Note = runNote(run)
	run.setProbes(lan, tun, w.lan.Offset(failAt), w.tun.Offset(failAt))
	run.setStream(w.stream.Stop())
	if err := repairNode(ctx, l, kind, victim); err != nil {
		return drillRun{}, err
	}
	return run, nil
}

// runNote says what went wrong with a drill, or "".
func runNote(r drillRun) string {
	switch {
	case r.NewActive == r.Victim:
		return "the broken gateway " + r.Victim + " is still active"
	case r.DetectMS < 0 || r.TakeoverMS < 0:
		return "no takeover after the failure in " + r.NewActive + "'s status: it took over before it (did " +
			r.Victim + " stall?) or the takeover is still running"
	}
	return ""
}

// setProbes fills the probes' columns; fail is the failure's offset on
// each probe's clock.
func (r *drillRun) setProbes(lan, tun *lab.ProbeResult, failLAN, failTun float64) {
	r.LANMS, r.TunnelMS = lan.OutageMS, tun.OutageMS
	r.TunnelBackMS = backAfter(tun, failTun)
	r.LANTrace, r.TunnelTrace = traceOf(lan, failLAN), traceOf(tun, failTun)
}

func (r *drillRun) setStream(s *lab.StreamResult) {
	r.StreamSurvived, r.StreamStallMS, r.StreamWhy = s.Survived, s.LongestStallMS, s.Why
}

// backAfter returns when (ms from the failure at offset fail of the
// probe's clock) the first reply after the longest loss window ending
// after the failure came: 0 if nothing was lost after it, -1 if the probe
// ended in the window.
func backAfter(r *lab.ProbeResult, fail float64) float64 {
	var w *lab.LossWindow
	for i := range r.Windows {
		x := &r.Windows[i]
		if x.EndMS > fail && (w == nil || x.DurationMS > w.DurationMS) {
			w = x
		}
	}
	if w == nil {
		return 0
	}
	next := w.LastSeq + 1
	if next >= len(r.Packets) || r.Packets[next].RecvMS < 0 {
		return -1
	}
	return r.Packets[next].RecvMS - fail
}

// traceOf is a probe's delivery in ms from the failure at offset fail.
func traceOf(r *lab.ProbeResult, fail float64) probeTrace {
	t := probeTrace{Lost: [][2]float64{}}
	if len(r.Packets) == 0 {
		return t
	}
	t.FromMS, t.ToMS = r.Packets[0].SentMS-fail, r.Packets[len(r.Packets)-1].SentMS-fail
	for _, w := range r.Windows {
		t.Lost = append(t.Lost, [2]float64{w.StartMS - fail, w.EndMS - fail})
	}
	return t
}

// waitFlowing waits, up to settleWait, until both probes have had a reply
// to a packet sent after since.
func waitFlowing(w *watch, since time.Time) {
	deadline := time.Now().Add(settleWait)
	for time.Now().Before(deadline) {
		if w.lan.RepliedSince(since) && w.tun.RepliedSince(since) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// peerOf is the other gateway of a gateway's site.
func peerOf(gw string) string {
	if gw[len(gw)-1] == '1' {
		return gw[:len(gw)-1] + "2"
	}
	return gw[:len(gw)-1] + "1"
}

// routePoll is how often routesBack looks at the kernel's routes.
const routePoll = 2 * time.Millisecond

// routesBack polls node's main routing table until a route other than a
// default one covers dst, and returns when, in ms from failAt; -1 if none
// came within settleWait. It sees static routes and BGP's alike.
func routesBack(ctx context.Context, l *lab.Lab, node string, dst netip.Addr, failAt time.Time) float64 {
	ns, err := l.NS(node)
	if err != nil {
		return -1
	}
	h, err := netnsutil.Handle(ns)
	if err != nil {
		return -1
	}
	defer h.Close()
	for time.Since(failAt) < settleWait && ctx.Err() == nil {
		if hasRoute(h, dst) {
			return msSince(failAt)
		}
		time.Sleep(routePoll)
	}
	return -1
}

func hasRoute(h *netlink.Handle, dst netip.Addr) bool {
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones > 0 && r.Dst.Contains(dst.AsSlice()) {
			return true
		}
	}
	return false
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// takeoverPhases reads the new active's status: when its cluster
// detected the failure and when its resource group had started, in ms
// from failAt; -1 for a phase whose timeline is older than the failure
// or missing.
func takeoverPhases(ctx context.Context, l *lab.Lab, node string, failAt time.Time) (detect, takeover float64) {
	detect, takeover = -1, -1
	sock, err := l.Socket(node)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var st daemon.Status
	if ctl.Call(cctx, sock, ctl.CmdStatus, nil, &st) != nil {
		return
	}
	if c := st.Cluster; c != nil && c.LastTransition != nil && c.LastTransition.To == cluster.RoleActive &&
		!c.LastTransition.Detected.Before(failAt) {
		detect = ms(c.LastTransition.Detected.Sub(failAt))
	}
	if tl := st.LastTransition; tl.Op == resources.OpStart && !tl.Started.Before(failAt) {
		takeover = ms(tl.Started.Add(tl.Duration).Sub(failAt))
	}
	return
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func breakNode(l *lab.Lab, kind, node string) error {
	switch kind {
	case "poweroff":
		return l.Poweroff(node)
	case "kill":
		return l.Kill(node)
	case "freeze":
		return l.Freeze(node)
	}
	return l.Unplug(node, "lan0")
}

func repairNode(ctx context.Context, l *lab.Lab, kind, node string) error {
	switch kind {
	case "poweroff":
		return l.Poweron(ctx, node)
	case "kill":
		return l.Restart(ctx, node)
	case "freeze":
		return l.Thaw(node)
	}
	return l.Plug(node, "lan0")
}

// settleWait bounds how long a drill waits for the site to settle, and
// for each phase of a takeover.
const settleWait = 15 * time.Second

// waitNormal waits until the site is back to normal: one active gateway,
// the other standby, a reply through the tunnel, and (with BGP) the route
// to the other site synced to the standby. It returns the active gateway.
func waitNormal(ctx context.Context, l *lab.Lab, site string, p drillPaths) (string, error) {
	deadline := time.Now().Add(settleWait)
	for {
		active, err := settledActive(ctx, l, site, time.Until(deadline))
		if err != nil {
			return "", err
		}
		role := roleOf(ctx, l, peerOf(active))
		reach := role == "standby" && reachable(ctx, l, p)
		synced := reach && standbyHasRoute(ctx, l, peerOf(active), p.otherAddr)
		if synced {
			return active, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("site %s not back to normal after %v: %s active, %s %q, %s answering through the tunnel: %v, "+
				"its route synced to the standby: %v", site, settleWait, active, peerOf(active), role, p.otherAddr, reach, synced)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// standbyHasRoute reports whether a standby running BGP as a resource
// holds, synced from the active, a route to dst that it would install at
// takeover. Without BGP (static routes) there is nothing to sync: true.
func standbyHasRoute(ctx context.Context, l *lab.Lab, node string, dst netip.Addr) bool {
	if l.State().Daemon.Routing != "bgp" {
		return true
	}
	sock, err := l.Socket(node)
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var r daemon.RoutesReply
	if ctl.Call(cctx, sock, ctl.CmdRoutes, nil, &r) != nil {
		return false
	}
	if r.Running {
		return true // always_on: it learns the routes itself
	}
	for _, rt := range r.Synced {
		if rt.Prefix.Bits() > 0 && rt.Prefix.Contains(dst) {
			return true
		}
	}
	return false
}

func roleOf(ctx context.Context, l *lab.Lab, node string) string {
	st, err := l.Status(ctx)
	if err != nil {
		return ""
	}
	for _, n := range st {
		if n.Node == node {
			return n.Role
		}
	}
	return ""
}

// reachable reports whether the other site's host answers through the
// tunnel within 200 ms.
func reachable(ctx context.Context, l *lab.Lab, p drillPaths) bool {
	r, err := l.Probe(ctx, lab.ProbeOptions{From: p.host, To: p.otherAddr, ICMP: true, Interval: 10 * time.Millisecond,
		Duration: 200 * time.Millisecond, StopOnReply: true})
	return err == nil && r.Received > 0
}

// settledActive waits until exactly one of the site's gateways reports
// active, for up to limit.
func settledActive(ctx context.Context, l *lab.Lab, site string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := l.Status(ctx)
		if err != nil {
			return "", err
		}
		var actives []string
		for _, n := range st {
			if n.Kind == lab.KindGateway && n.Node[:2] == site && n.Role == "active" {
				actives = append(actives, n.Node)
			}
		}
		if len(actives) == 1 {
			return actives[0], nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("site %s: active gateways %v after %v, want exactly one", site, actives, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// summarize sums up f over the runs, leaving out unmeasured (negative)
// values.
func summarize(runs []drillRun, f func(drillRun) float64) summary {
	var v []float64
	for _, r := range runs {
		if x := f(r); x >= 0 {
			v = append(v, x)
		}
	}
	slices.Sort(v)
	if len(v) == 0 {
		return summary{}
	}
	at := func(q float64) float64 { return v[min(len(v)-1, int(q*float64(len(v)-1)+0.5))] }
	return summary{N: len(v), Min: v[0], Median: at(0.5), P99: at(0.99), Max: v[len(v)-1]}
}

// msCell prints a time in ms, "-" when not measured.
func msCell(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func streamCell(r drillRun) string {
	if r.StreamSurvived {
		return "survived"
	}
	return "LOST: " + r.StreamWhy
}

func drillTable(t *table, r *drillReport) {
	head := []any{"RUN", "BROKEN (" + r.Kind + ")", "NEW ACTIVE"}
	for _, c := range drillColumns() {
		head = append(head, c.head+" ms")
	}
	t.row(append(head, "TCP STREAM")...)
	for _, x := range r.Runs {
		row := []any{x.Run, x.Victim, x.NewActive}
		for _, c := range drillColumns() {
			row = append(row, msCell(c.get(x)))
		}
		t.row(append(row, streamCell(x))...)
	}
	t.row("")
	t.row("ms", "N", "MIN", "MEDIAN", "P99", "MAX")
	for _, c := range drillColumns() {
		s := r.Summary[c.key]
		t.row(c.key, s.N, msCell(s.Min), msCell(s.Median), msCell(s.P99), msCell(s.Max))
	}
	t.row(fmt.Sprintf("TCP stream survived %d of %d runs", r.StreamsSurvived, len(r.Runs)))
	for _, x := range r.Runs {
		if x.Note != "" {
			t.row(fmt.Sprintf("run %d: %s", x.Run, x.Note))
		}
	}
}

// writeDrillPlot draws rep into an SVG file.
func writeDrillPlot(path string, rep *drillReport) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing plot: %w", err)
	}
	if err := drillPlot(f, rep); err != nil {
		f.Close()
		return fmt.Errorf("writing plot %s: %w", path, err)
	}
	return f.Close()
}
