package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/havpn/havpn/internal/lab"
	"github.com/spf13/cobra"
)

func newLabCmd(g *globals) *cobra.Command {
	var prefix string
	c := &cobra.Command{
		Use:   "lab",
		Short: "The network-namespace lab: two sites, two gateways each, on this machine",
		Long: `The lab builds DESIGN.md's topology in network namespaces named
<prefix><node> and breaks it on purpose. Nodes: inet, s1gw1, s1gw2, s2gw1,
s2gw2, s1host, s2host. It needs root and never touches the root namespace.`,
	}
	def := os.Getenv("HAVPN_LAB_PREFIX")
	if def == "" {
		def = lab.DefaultPrefix
	}
	c.PersistentFlags().StringVar(&prefix, "prefix", def, "namespace prefix (env HAVPN_LAB_PREFIX)")
	open := func() (*lab.Lab, error) { return lab.Open(prefix) }
	c.AddCommand(
		newLabUpCmd(g, &prefix),
		&cobra.Command{
			Use: "down", Short: "Remove everything the lab made (idempotent)", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return lab.Down(prefix) },
		},
		newLabStatusCmd(g, open),
		newLabExecCmd(open),
		labNodeCmd("kill NODE", "SIGKILL a gateway's daemon", open, func(l *lab.Lab, n string) error { return l.Kill(n) }),
		labNodeCmd("freeze NODE", "SIGSTOP a gateway's daemon", open, func(l *lab.Lab, n string) error { return l.Freeze(n) }),
		labNodeCmd("thaw NODE", "SIGCONT a frozen daemon", open, func(l *lab.Lab, n string) error { return l.Thaw(n) }),
		labNodeCmd("restart NODE", "Restart a gateway's daemon and wait until it answers", open, func(l *lab.Lab, n string) error {
			return l.Restart(context.Background(), n)
		}),
		labNodeCmd("poweroff NODE", "Machine death: every cable out, every process killed", open, func(l *lab.Lab, n string) error { return l.Poweroff(n) }),
		labNodeCmd("poweron NODE", "Cables back, processes started again", open, func(l *lab.Lab, n string) error {
			return l.Poweron(context.Background(), n)
		}),
		labIfaceCmd("unplug NODE IFACE", "Pull a cable: the node's interface loses carrier", open, (*lab.Lab).Unplug),
		labIfaceCmd("plug NODE IFACE", "Put a cable back", open, (*lab.Lab).Plug),
		newLabProbeCmd(g, open),
		newLabFailoverCmd(g, open),
		newLabEchoCmd(),
	)
	return c
}

func newLabUpCmd(g *globals, prefix *string) *cobra.Command {
	var o lab.Options
	c := &cobra.Command{
		Use:   "up",
		Short: "Build the lab, start one daemon per gateway, wait until ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Prefix = *prefix
			st, err := lab.Up(cmd.Context(), o)
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), g.output, st, func(t *table) {
				t.row(fmt.Sprintf("lab %q up: %d namespaces, state in %s", st.Prefix, len(st.Namespaces), lab.Dir(st.Prefix)))
			})
		},
	}
	var noDaemons bool
	c.Flags().IntVar(&o.Sites, "sites", 2, "number of sites (only 2 so far)")
	c.Flags().StringVar(&o.Daemon.Keying, "keying", "ike", "how the tunnel is keyed: ike (IKEv2, lab-made certificates) or manual (static keys)")
	c.Flags().StringVar(&o.Daemon.Routing, "routing", "bgp", "how each site learns the other's LAN: bgp (iBGP over the tunnel, like the seed) or static (a route on the tunnel)")
	c.Flags().BoolVar(&o.Daemon.AutoFailback, "auto-failback", false, "the preferred gateway (gw1) takes its site back when it returns")
	c.Flags().DurationVar(&o.Daemon.Keepalive, "keepalive", 0, "heartbeat keepalive (0: the default, 50ms)")
	c.Flags().DurationVar(&o.Daemon.Deadtime, "deadtime", 0, "heartbeat deadtime (0: the default, 3x keepalive)")
	c.Flags().BoolVar(&noDaemons, "no-daemons", false, "build the network only, start no havpn daemons")
	c.PreRun = func(*cobra.Command, []string) { o.Daemons = !noDaemons }
	return c
}

func newLabStatusCmd(g *globals, open func() (*lab.Lab, error)) *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "Nodes, their daemons and links", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := open()
			if err != nil {
				return err
			}
			st, err := l.Status(cmd.Context())
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), g.output, st, func(t *table) {
				t.row("NODE", "KIND", "NAMESPACE", "ECHO", "DAEMON", "ROLE", "LINKS")
				for _, n := range st {
					echo, d := "-", "-"
					if n.EchoPID != 0 {
						echo = fmt.Sprintf("pid %d", n.EchoPID)
					}
					if n.Daemon != "" {
						d = fmt.Sprintf("%s (pid %d)", n.Daemon, n.DaemonPID)
						if n.Ready {
							d += ", answers"
						} else if n.Daemon == "running" {
							d += ", not answering"
						}
					}
					if n.PoweredOff {
						d = "powered off"
					}
					role := n.Role
					if role == "" {
						role = "-"
					}
					t.row(n.Node, n.Kind, n.NS, echo, d, role, links(n.Links))
				}
			})
		},
	}
}

func links(m map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+":"+m[k])
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func newLabExecCmd(open func() (*lab.Lab, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "exec NODE -- CMD...",
		Short: "Run a command inside a node's namespace",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := open()
			if err != nil {
				return err
			}
			c, err := l.Command(args[0], args[1:]...)
			if err != nil {
				return err
			}
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := l.Start(args[0], c); err != nil {
				return err
			}
			err = c.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return silentError{ee.ExitCode()}
			}
			return err
		},
	}
}

func labNodeCmd(use, short string, open func() (*lab.Lab, error), op func(*lab.Lab, string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		ValidArgs: lab.NodeNames(),
		RunE: func(_ *cobra.Command, args []string) error {
			l, err := open()
			if err != nil {
				return err
			}
			return op(l, args[0])
		},
	}
}

func labIfaceCmd(use, short string, open func() (*lab.Lab, error), op func(*lab.Lab, string, string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			l, err := open()
			if err != nil {
				return err
			}
			return op(l, args[0], args[1])
		},
	}
}

func newLabProbeCmd(g *globals, open func() (*lab.Lab, error)) *cobra.Command {
	var o lab.ProbeOptions
	var to string
	c := &cobra.Command{
		Use:   "probe --from NODE --to ADDR",
		Short: "Send numbered packets and report every loss window",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.From == "" || to == "" {
				return usageError{errors.New("--from NODE and --to ADDR are required")}
			}
			a, err := netip.ParseAddr(to)
			if err != nil {
				return usageError{fmt.Errorf("--to %q: not an IP address", to)}
			}
			o.To = a
			if o.Duration == 0 {
				o.Duration = -1 // until interrupted
			}
			l, err := open()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			r, err := l.Probe(ctx, o)
			if err != nil {
				return err
			}
			return render(cmd.OutOrStdout(), g.output, r, func(t *table) { probeTable(t, r) })
		},
	}
	c.Flags().StringVar(&o.From, "from", "", "node that sends (required)")
	c.Flags().StringVar(&to, "to", "", "destination address (required)")
	c.Flags().DurationVar(&o.Interval, "interval", time.Millisecond, "time between packets")
	c.Flags().DurationVar(&o.Duration, "duration", 5*time.Second, "how long to send (0: until interrupted)")
	c.Flags().BoolVar(&o.ICMP, "icmp", false, "ICMP echo instead of UDP to the lab's echo responder")
	c.Flags().IntVar(&o.Size, "size", 64, "payload bytes")
	return c
}

func probeTable(t *table, r *lab.ProbeResult) {
	t.row(fmt.Sprintf("%s -> %s (%s every %gms): sent %d, received %d, lost %d, rtt min/avg/max %.3f/%.3f/%.3f ms",
		r.From, r.To, r.Proto, r.IntervalMS, r.Sent, r.Received, r.Lost, r.RTTMinMS, r.RTTAvgMS, r.RTTMaxMS))
	if len(r.Windows) == 0 {
		t.row("no loss")
		return
	}
	t.row("LOSS WINDOW", "START ms", "END ms", "DURATION ms", "LOST")
	for i, w := range r.Windows {
		t.row(i+1, fmt.Sprintf("%.1f", w.StartMS), fmt.Sprintf("%.1f", w.EndMS), fmt.Sprintf("%.1f", w.DurationMS), w.Lost)
	}
}

func newLabEchoCmd() *cobra.Command {
	var port int
	c := &cobra.Command{
		Use: "echo", Short: "UDP echo responder (started by lab up in every node)", Hidden: true, Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return lab.Echo(ctx, port)
		},
	}
	c.Flags().IntVar(&port, "port", lab.DefaultEchoPort, "UDP port")
	return c
}
