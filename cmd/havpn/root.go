package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// defaultSocket is the daemon's control socket unless the config says
// otherwise.
const defaultSocket = "/run/havpn/havpn.sock"

// globals are the persistent flags every command sees.
type globals struct {
	socket string
	output string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "havpn",
		Short: "Highly available site-to-site VPN gateway",
		Long: `havpn runs one daemon per gateway: a GRE-in-ESP tunnel between sites keyed by
IKEv2, BGP over the tunnel, and a heartbeat cluster that moves the virtual
IPs to the standby gateway when the active one dies.

Exit codes: 0 success, 1 failure, 2 usage error, 3 no daemon answers,
4 the daemon refused the request.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "table" && g.output != "json" {
				return usageError{fmt.Errorf("--output %q: want table or json", g.output)}
			}
			return nil
		},
	}
	sock := os.Getenv("HAVPN_SOCKET")
	if sock == "" {
		sock = defaultSocket
	}
	root.PersistentFlags().StringVar(&g.socket, "socket", sock, "daemon control socket (env HAVPN_SOCKET)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newVersionCmd(g),
		newRunCmd(),
		newConfigCmd(g),
		newManCmd(),
	)
	root.AddCommand(newClientCmds(g)...)
	addExtraCmds(root, g)
	wrapArgs(root)
	return root
}

// wrapArgs makes every command's argument-count errors usage errors, so
// they exit 2.
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		inner := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := inner(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}
