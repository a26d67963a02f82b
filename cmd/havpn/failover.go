package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/havpn/havpn/internal/lab"
	"github.com/spf13/cobra"
)

// drillRun is one failover drill's outcome.
type drillRun struct {
	Run       int     `json:"run"`
	Victim    string  `json:"victim"`
	NewActive string  `json:"new_active"`
	LANMS     float64 `json:"lan_vip_outage_ms"`
	TunnelMS  float64 `json:"tunnel_outage_ms"`
}

// drillReport is `havpn lab failover`'s result.
type drillReport struct {
	Kind    string             `json:"kind"`
	Runs    []drillRun         `json:"runs"`
	Summary map[string]summary `json:"summary"`
}

type summary struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

func newLabFailoverCmd(g *globals, open func() (*lab.Lab, error)) *cobra.Command {
	var kind string
	var runs int
	c := &cobra.Command{
		Use:   "failover --poweroff|--kill|--freeze|--unplug SITE",
		Short: "Break a site's active gateway N times while probing; report the outage of each run",
		Long: `Each run finds SITE's (s1 or s2) active gateway, probes s1host's LAN VIP
and s2host through the tunnel every 1 ms, breaks the active gateway, and
measures the outage; then it repairs it (poweron, restart, thaw, plug) and
waits for the cluster to settle before the next run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind == "" {
				return usageError{fmt.Errorf("one of --poweroff, --kill, --freeze, --unplug is required")}
			}
			if args[0] != "s1" && args[0] != "s2" {
				return usageError{fmt.Errorf("site %q: want s1 or s2", args[0])}
			}
			l, err := open()
			if err != nil {
				return err
			}
			rep, err := drill(cmd.Context(), l, args[0], kind, runs)
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), g.output, rep, func(t *table) { drillTable(t, rep) })
		},
	}
	for _, k := range []string{"poweroff", "kill", "freeze", "unplug"} {
		c.Flags().BoolFunc(k, "break the active gateway by "+k, func(string) error { kind = k; return nil })
	}
	c.Flags().IntVar(&runs, "runs", 1, "number of drills")
	return c
}

func drill(ctx context.Context, l *lab.Lab, site, kind string, runs int) (*drillReport, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rep := &drillReport{Kind: kind}
	for i := 1; i <= runs; i++ {
		r, err := drillOnce(ctx, l, site, kind)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i, err)
		}
		r.Run = i
		rep.Runs = append(rep.Runs, r)
	}
	rep.Summary = map[string]summary{
		"lan_vip_outage_ms": summarize(rep.Runs, func(r drillRun) float64 { return r.LANMS }),
		"tunnel_outage_ms":  summarize(rep.Runs, func(r drillRun) float64 { return r.TunnelMS }),
	}
	return rep, nil
}

func drillOnce(ctx context.Context, l *lab.Lab, site, kind string) (drillRun, error) {
	victim, err := settledActive(ctx, l, site, settleWait)
	if err != nil {
		return drillRun{}, err
	}
	lanVIP := lab.SiteInfo(int(site[1] - '0')).LANVIP.Addr()
	host := site + "host"
	other := "192.168.2.10"
	if site == "s2" {
		other = "192.168.1.10"
	}
	probe := func(to netip.Addr, icmp bool) (*lab.RunningProbe, error) {
		return l.StartProbe(ctx, lab.ProbeOptions{From: host, To: to, ICMP: icmp, Interval: time.Millisecond, Duration: 3 * time.Second})
	}
	pl, err := probe(lanVIP, false)
	if err != nil {
		return drillRun{}, err
	}
	pt, err := probe(netip.MustParseAddr(other), true)
	if err != nil {
		return drillRun{}, err
	}
	time.Sleep(500 * time.Millisecond)
	if err := breakNode(l, kind, victim); err != nil {
		return drillRun{}, err
	}
	rl, rt := pl.Wait(), pt.Wait()
	next, _ := settledActive(ctx, l, site, settleWait)
	if err := repairNode(ctx, l, kind, victim); err != nil {
		return drillRun{}, err
	}
	return drillRun{Victim: victim, NewActive: next, LANMS: rl.OutageMS, TunnelMS: rt.OutageMS}, nil
}

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

// settleWait bounds how long a drill waits for the site to settle.
const settleWait = 15 * time.Second

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

func summarize(runs []drillRun, f func(drillRun) float64) summary {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return summary{}
	}
	at := func(q float64) float64 { return v[min(len(v)-1, int(q*float64(len(v)-1)+0.5))] }
	return summary{Min: v[0], Median: at(0.5), P99: at(0.99), Max: v[len(v)-1]}
}

func drillTable(t *table, r *drillReport) {
	t.row("RUN", "BROKEN ("+r.Kind+")", "NEW ACTIVE", "LAN VIP OUTAGE ms", "TUNNEL OUTAGE ms")
	for _, x := range r.Runs {
		t.row(x.Run, x.Victim, x.NewActive, fmt.Sprintf("%.1f", x.LANMS), fmt.Sprintf("%.1f", x.TunnelMS))
	}
	t.row("")
	t.row("", "MIN", "MEDIAN", "P99", "MAX")
	for _, k := range []string{"lan_vip_outage_ms", "tunnel_outage_ms"} {
		s := r.Summary[k]
		t.row(k, fmt.Sprintf("%.1f", s.Min), fmt.Sprintf("%.1f", s.Median), fmt.Sprintf("%.1f", s.P99), fmt.Sprintf("%.1f", s.Max))
	}
}
