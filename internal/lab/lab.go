package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"syscall"
	"time"

	"github.com/havpn/havpn/internal/ctl"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Lab is a lab that is up, opened from its state file.
type Lab struct {
	st *State
}

// Open opens the lab with this prefix, which Up has completed. Errors:
// ErrNotRoot, ErrNoLab (wrapped) when no lab is up, and a plain error for a
// damaged state file or a lab still (or never fully) coming up.
func Open(prefix string) (*Lab, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := requireRoot(); err != nil {
		return nil, err
	}
	st, err := LoadState(prefix)
	if err != nil {
		return nil, err
	}
	if !st.Complete {
		return nil, fmt.Errorf("lab %q is not complete: lab up is still running or died (havpn lab down --prefix %s)", prefix, prefix)
	}
	return &Lab{st: st}, nil
}

// State returns the lab's state (do not modify it).
func (l *Lab) State() *State { return l.st }

// NS returns the namespace of a node.
func (l *Lab) NS(node string) (string, error) {
	ns, ok := l.st.Nodes[node]
	if !ok || !isUserNode(node) {
		return "", fmt.Errorf("no node %q in the lab (nodes: %v)", node, NodeNames())
	}
	return ns.NS, nil
}

// Socket returns a gateway daemon's control socket.
func (l *Lab) Socket(node string) (string, error) {
	if _, err := l.gateway(node); err != nil {
		return "", err
	}
	return socketPath(l.st.Prefix, node), nil
}

func isUserNode(node string) bool {
	for _, n := range NodeNames() {
		if n == node {
			return true
		}
	}
	return false
}

func (l *Lab) gateway(node string) (*NodeState, error) {
	spec, ok := Spec(node)
	if !ok || spec.Kind != KindGateway {
		return nil, fmt.Errorf("%q is not a gateway (gateways: %v)", node, Gateways())
	}
	ns, ok := l.st.Nodes[node]
	if !ok {
		return nil, fmt.Errorf("%s: not in the lab's state", node)
	}
	return ns, nil
}

// port finds a node's interface.
func port(node, iface string) (Port, error) {
	spec, ok := Spec(node)
	if !ok || spec.Kind == KindSwitch {
		return Port{}, fmt.Errorf("no node %q in the lab (nodes: %v)", node, NodeNames())
	}
	var names []string
	for _, p := range spec.Ports {
		if p.Iface == iface {
			return p, nil
		}
		names = append(names, p.Iface)
	}
	return Port{}, fmt.Errorf("%s has no interface %q (it has %v)", node, iface, names)
}

// setCable sets the switch side of a node's interface up or down.
func (l *Lab) setCable(node, iface string, up bool) error {
	p, err := port(node, iface)
	if err != nil {
		return err
	}
	h, err := netnsutil.Handle(l.st.Prefix + p.Switch)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(p.Peer)
	if err != nil {
		return fmt.Errorf("%s %s: switch port %s: %w", node, iface, p.Peer, err)
	}
	if up {
		err = h.LinkSetUp(link)
	} else {
		err = h.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("%s %s: switch port %s: %w", node, iface, p.Peer, err)
	}
	return nil
}

// Unplug pulls the cable of a node's interface: it reports NO-CARRIER.
func (l *Lab) Unplug(node, iface string) error { return l.setCable(node, iface, false) }

// Plug puts the cable back.
func (l *Lab) Plug(node, iface string) error { return l.setCable(node, iface, true) }

// WaitLink waits until a node's interface has carrier and is
// operationally up (up true), or has lost carrier (up false). After Plug
// the kernel starts transmitting on the interface only once it is
// operationally up (the link watcher may take up to a second), so tests
// that need traffic right after a Plug wait here first.
func (l *Lab) WaitLink(ctx context.Context, node, iface string, up bool) error {
	if _, err := port(node, iface); err != nil {
		return err
	}
	h, err := netnsutil.Handle(l.st.Nodes[node].NS)
	if err != nil {
		return err
	}
	defer h.Close()
	for {
		link, err := h.LinkByName(iface)
		if err != nil {
			return fmt.Errorf("%s %s: %w", node, iface, err)
		}
		a := link.Attrs()
		carrier := a.RawFlags&unix.IFF_LOWER_UP != 0
		if carrier == up && (a.OperState == netlink.OperUp) == up {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s: waiting for carrier %v (carrier %v, oper %v): %w", node, iface, up, carrier, a.OperState, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Poweroff is machine death: every cable of the node pulled, then every
// process in its namespace (daemon, echo responder, anything started with
// Exec) SIGKILLed at once, with no SIGTERM to shut down gracefully on.
func (l *Lab) Poweroff(node string) error {
	spec, ok := Spec(node)
	if !ok || spec.Kind == KindSwitch || spec.Kind == KindRouter {
		return fmt.Errorf("%q: only gateways and hosts can be powered off", node)
	}
	// Freeze every process first: a dead machine does not see its cables
	// go one by one and cannot hand over in between.
	nss := []string{l.st.Nodes[node].NS}
	pids, err := pidsIn(nss)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	for _, p := range spec.Ports {
		if err := l.Unplug(node, p.Iface); err != nil {
			return err
		}
	}
	if err := killIn(nss, syscall.SIGKILL, 0); err != nil {
		return err
	}
	l.st.Nodes[node].PoweredOff = true
	return l.st.save()
}

// Poweron puts the cables back and starts the node's echo responder and,
// on a gateway of a lab with daemons, its daemon, waiting until it answers.
func (l *Lab) Poweron(ctx context.Context, node string) error {
	spec, ok := Spec(node)
	if !ok || spec.Kind == KindSwitch || spec.Kind == KindRouter {
		return fmt.Errorf("%q: only gateways and hosts can be powered on", node)
	}
	ns := l.st.Nodes[node]
	if alive(ns.EchoPID) || alive(ns.DaemonPID) {
		return fmt.Errorf("%s is not powered off", node)
	}
	for _, p := range spec.Ports {
		if err := l.Plug(node, p.Iface); err != nil {
			return err
		}
	}
	// The machine comes up with its links up.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, p := range spec.Ports {
		if err := l.WaitLink(wctx, node, p.Iface, true); err != nil {
			return err
		}
	}
	if err := startEcho(l.st, node); err != nil {
		return err
	}
	ns.PoweredOff = false
	if spec.Kind == KindGateway && l.st.Daemons {
		// Restart saves the state.
		return l.Restart(ctx, node)
	}
	return l.st.save()
}

// Command returns cmd set up to run argv inside a node's namespace; start
// it with Start.
func (l *Lab) Command(node string, argv ...string) (*exec.Cmd, error) {
	if _, err := l.NS(node); err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("no command to run in %s", node)
	}
	return exec.Command(argv[0], argv[1:]...), nil
}

// Start starts a command made by Command inside the node.
func (l *Lab) Start(node string, cmd *exec.Cmd) error {
	ns, err := l.NS(node)
	if err != nil {
		return err
	}
	return netnsutil.Start(ns, cmd)
}

// Exec runs argv inside a node's namespace, waits for it and returns its
// combined output. A command that exits non-zero gives an *exec.ExitError
// (wrapped) along with its output. ctx kills the command.
func (l *Lab) Exec(ctx context.Context, node string, argv ...string) ([]byte, error) {
	if _, err := l.Command(node, argv...); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := l.Start(node, cmd); err != nil {
		return nil, fmt.Errorf("%s: starting %s: %w", node, argv[0], err)
	}
	if err := cmd.Wait(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %s: %w", node, argv[0], err)
	}
	return out.Bytes(), nil
}

// Do runs fn on a thread inside a node's namespace: sockets fn opens (a TCP
// stream's ends, say) live there and stay there after Do returns.
// Goroutines fn starts do not inherit the namespace.
func (l *Lab) Do(node string, fn func() error) error {
	ns, err := l.NS(node)
	if err != nil {
		return err
	}
	return netnsutil.Do(ns, fn)
}

// NodeStatus is one line of `lab status`.
type NodeStatus struct {
	Node       string `json:"node"`
	Kind       string `json:"kind"`
	NS         string `json:"ns"`
	PoweredOff bool   `json:"powered_off"`
	EchoPID    int    `json:"echo_pid,omitempty"`
	DaemonPID  int    `json:"daemon_pid,omitempty"`
	// Daemon is "running", "frozen" or "dead"; empty without daemons.
	Daemon string `json:"daemon,omitempty"`
	// Ready is whether the daemon answered status on its control socket.
	Ready bool `json:"ready"`
	// Role is the role the daemon reported (active, standby, ...).
	Role   string `json:"role,omitempty"`
	Socket string `json:"socket,omitempty"`
	// Links maps each interface to "up", "no-carrier", "down" or
	// "missing".
	Links map[string]string `json:"links"`
}

// statusTimeout bounds the status call that tells whether a daemon is
// ready.
const statusTimeout = 500 * time.Millisecond

// Status lists every node with its processes and links.
func (l *Lab) Status(ctx context.Context) ([]NodeStatus, error) {
	var out []NodeStatus
	for _, name := range NodeNames() {
		spec, _ := Spec(name)
		ns := l.st.Nodes[name]
		if ns == nil {
			continue
		}
		s := NodeStatus{Node: name, Kind: spec.Kind, NS: ns.NS, PoweredOff: ns.PoweredOff, Links: map[string]string{}}
		if alive(ns.EchoPID) {
			s.EchoPID = ns.EchoPID
		}
		if spec.Kind == KindGateway && l.st.Daemons {
			s.DaemonPID, s.Socket, s.Daemon = ns.DaemonPID, ns.Socket, procState(ns.DaemonPID)
			if s.Daemon == "running" {
				cctx, cancel := context.WithTimeout(ctx, statusTimeout)
				var v struct {
					Role string `json:"role"`
				}
				s.Ready = ctl.Call(cctx, ns.Socket, ctl.CmdStatus, nil, &v) == nil
				s.Role = v.Role
				cancel()
			}
		}
		if err := linkStates(ns.NS, spec, s.Links); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func procState(pid int) string {
	switch {
	case !alive(pid):
		return "dead"
	case isStopped(pid):
		return "frozen"
	}
	return "running"
}

func linkStates(ns string, spec NodeSpec, into map[string]string) error {
	h, err := netnsutil.Handle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	names := make([]string, 0, len(spec.Ports)+len(spec.Bridges))
	for _, p := range spec.Ports {
		names = append(names, p.Iface)
	}
	if spec.Kind == KindRouter {
		for _, b := range spec.Bridges {
			names = append(names, b.Name)
		}
	}
	for _, name := range names {
		link, err := h.LinkByName(name)
		if err != nil {
			into[name] = "missing"
			continue
		}
		a := link.Attrs()
		switch {
		case a.Flags&net.FlagUp == 0:
			into[name] = "down"
		case a.RawFlags&unix.IFF_LOWER_UP == 0:
			into[name] = "no-carrier"
		default:
			into[name] = "up"
		}
	}
	return nil
}
