package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/havpn/havpn/internal/ctl"
	"github.com/spf13/cobra"
)

// callTimeout bounds one CLI request to the daemon.
const callTimeout = 10 * time.Second

// tableFunc renders one command's reply as a table.
type tableFunc func(raw json.RawMessage, t *table) error

type readCmd struct {
	use, short, command string
	table               tableFunc
}

func newClientCmds(g *globals) []*cobra.Command {
	reads := []readCmd{
		{"status", "Show the gateway: role, peers, links, resources, last transition", ctl.CmdStatus, statusTable},
		{"tunnels", "Show tunnels: state, SAs in use, packet and drop counters", ctl.CmdTunnels, genericTable},
		{"sas", "Show IKE and child SAs, like swanctl --list-sas", ctl.CmdSAs, sasTable},
		{"routes", "Show BGP routes and whether they are in the kernel", ctl.CmdRoutes, routesTable},
		{"neighbors", "Show BGP neighbors and their sessions", ctl.CmdNeighbors, neighborsTable},
	}
	var cmds []*cobra.Command
	for _, r := range reads {
		cmds = append(cmds, newReadCmd(g, r))
	}
	cmds = append(cmds,
		newActionCmd(g, "standby", "Hand the active role to the peer (only if the peer is healthy)", ctl.CmdStandby),
		newActionCmd(g, "takeover", "Take the active role from the peer", ctl.CmdTakeover),
		newActionCmd(g, "reload", "Reload the config file (a bad config is rejected and the running one kept)", ctl.CmdReload),
		newLogLevelCmd(g),
	)
	return cmds
}

func newReadCmd(g *globals, r readCmd) *cobra.Command {
	return &cobra.Command{
		Use:   r.use,
		Short: r.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := call(cmd.Context(), g, r.command, nil)
			if err != nil {
				return err
			}
			if g.output == "json" {
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					return fmt.Errorf("decoding %s reply: %w", r.command, err)
				}
				return render(cmd.OutOrStdout(), "json", v, nil)
			}
			t := &table{}
			if err := r.table(raw, t); err != nil {
				return fmt.Errorf("rendering %s: %w", r.command, err)
			}
			return t.write(cmd.OutOrStdout())
		},
	}
}

// actionReply is what state-changing commands answer.
type actionReply struct {
	Message string `json:"message"`
}

func newActionCmd(g *globals, use, short, command string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return doAction(cmd, g, command, nil)
		},
	}
}

func newLogLevelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:       "log-level debug|info|warn|error",
		Short:     "Change the daemon's log level until the next restart or reload",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"debug", "info", "warn", "error"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return doAction(cmd, g, ctl.CmdLogLevel, map[string]string{"level": args[0]})
		},
	}
}

func doAction(cmd *cobra.Command, g *globals, command string, args any) error {
	raw, err := call(cmd.Context(), g, command, args)
	if err != nil {
		return err
	}
	var r actionReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("decoding %s reply: %w", command, err)
	}
	return render(cmd.OutOrStdout(), g.output, r, func(t *table) { t.row(r.Message) })
}

func call(ctx context.Context, g *globals, command string, args any) (json.RawMessage, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	raw, err := ctl.CallRaw(ctx, g.socket, command, args)
	if err == nil {
		return raw, nil
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, noDaemonError{err}
	}
	return nil, err
}

// genericTable prints an object's fields as key/value rows, or a list of
// objects one per row, for replies that have no dedicated table yet.
func genericTable(raw json.RawMessage, t *table) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	flatten(t, "", v)
	return nil
}

func flatten(t *table, prefix string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			flatten(t, join(prefix, k), x[k])
		}
	case []any:
		if len(x) == 0 {
			t.row(prefix, "(none)")
		}
		for i, e := range x {
			flatten(t, fmt.Sprintf("%s[%d]", prefix, i), e)
		}
	default:
		t.row(prefix, fmt.Sprint(x))
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}
