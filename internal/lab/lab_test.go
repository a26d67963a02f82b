package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestMain lets the test binary stand in for `havpn lab echo`, so the lab
// can start its echo responders without building havpn.
//
// With HAVPN_LAB_TEST_NOTROOT set (TestNotRoot runs it so, as nobody) it
// tries Up, Open and Down and prints their errors, one a line.
func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "lab" && os.Args[2] == "echo" {
		port, _ := strconv.Atoi(os.Args[4])
		if err := Echo(context.Background(), port); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if prefix := os.Getenv("HAVPN_LAB_TEST_NOTROOT"); prefix != "" {
		_, errUp := Up(context.Background(), Options{Prefix: prefix})
		_, errOpen := Open(prefix)
		errDown := Down(prefix)
		for _, err := range []error{errUp, errOpen, errDown} {
			fmt.Println(err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func upForTest(t *testing.T) *Lab {
	t.Helper()
	labtest.RequireRoot(t)
	prefix := labtest.Prefix(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if _, err := Up(context.Background(), Options{Prefix: prefix, Bin: exe}); err != nil {
		t.Fatalf("Up: %v", err)
	}
	l, err := Open(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func rootLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

func TestLab(t *testing.T) {
	labtest.RequireRoot(t)
	linksBefore := rootLinks(t)
	l := upForTest(t)
	prefix := l.State().Prefix
	ctx := context.Background()

	t.Run("second up refused", func(t *testing.T) {
		_, err := Up(ctx, Options{Prefix: prefix, Bin: l.State().Bin})
		if err == nil {
			t.Fatal("second Up with the same prefix succeeded")
		}
		t.Log(err)
	})
	t.Run("built as specified", func(t *testing.T) { checkBuilt(t, prefix) })
	t.Run("hosts reach both gateways", func(t *testing.T) {
		for _, c := range []struct{ from, to string }{
			{"s1host", "192.168.1.2"}, {"s1host", "192.168.1.3"},
			{"s2host", "192.168.2.2"}, {"s2host", "192.168.2.3"},
		} {
			expectReach(t, l, c.from, c.to, false)
		}
	})
	t.Run("gateways reach inet", func(t *testing.T) {
		for _, gw := range Gateways() {
			spec, _ := Spec(gw)
			expectReach(t, l, gw, spec.Gateway.String(), true)
		}
		// And across inet to the other site's gateway.
		expectReach(t, l, "s1gw1", "203.0.113.2", false)
	})
	t.Run("unplug and plug", func(t *testing.T) {
		if err := l.Unplug("s1gw1", "lan0"); err != nil {
			t.Fatal(err)
		}
		waitCarrier(t, l, "s1gw1", "lan0", false)
		r, err := l.Probe(ctx, ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.1.2"),
			Interval: 5 * time.Millisecond, Duration: 100 * time.Millisecond, Grace: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if r.Received != 0 {
			t.Errorf("s1gw1 answered through a pulled cable: %d of %d", r.Received, r.Sent)
		}
		if err := l.Plug("s1gw1", "lan0"); err != nil {
			t.Fatal(err)
		}
		waitCarrier(t, l, "s1gw1", "lan0", true)
		// Traffic flows again (the first packets after a plug may still
		// be lost while the kernel settles, as on a real link).
		r, err = l.Probe(ctx, ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.1.2"),
			Duration: 3 * time.Second, StopOnReply: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Received == 0 {
			t.Errorf("s1gw1 unreachable after plug: %+v", r)
		}
	})
	t.Run("probe across a 500ms unplug", func(t *testing.T) {
		done := make(chan *ProbeResult)
		go func() {
			r, err := l.Probe(ctx, ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.1.2"), Duration: 2 * time.Second})
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
		time.Sleep(600 * time.Millisecond)
		if err := l.Unplug("s1gw1", "lan0"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := l.Plug("s1gw1", "lan0"); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r == nil {
			t.Fatal("no probe result")
		}
		t.Logf("sent %d received %d windows %+v", r.Sent, r.Received, r.Windows)
		if len(r.Windows) != 1 {
			t.Fatalf("want exactly one loss window, got %+v", r.Windows)
		}
		if d := r.Windows[0].DurationMS; d < 400 || d > 700 {
			t.Errorf("loss window %.1f ms, want 400-700", d)
		}
	})
	t.Run("kill needs daemons", func(t *testing.T) {
		if err := l.Kill("s1gw1"); !errors.Is(err, ErrNoDaemon) {
			t.Errorf("Kill with no daemon: %v, want ErrNoDaemon", err)
		}
		if err := l.Kill("s1host"); err == nil {
			t.Error("Kill of a host succeeded")
		}
		if err := l.Restart(ctx, "s1gw1"); !errors.Is(err, ErrNoDaemon) {
			t.Errorf("Restart with no daemons: %v, want ErrNoDaemon", err)
		}
	})
	t.Run("bad input changes nothing", func(t *testing.T) {
		for _, c := range []struct {
			name string
			err  error
		}{
			{"unplug unknown node", l.Unplug("s9gw9", "lan0")},
			{"unplug unknown iface", l.Unplug("s1gw1", "eth7")},
			{"unplug switch", l.Unplug("s1sw", "lan")},
			{"poweroff router", l.Poweroff("inet")},
			{"freeze host", l.Freeze("s1host")},
		} {
			if c.err == nil {
				t.Errorf("%s: no error", c.name)
			}
		}
		if _, err := l.Exec(ctx, "nosuch", "true"); err == nil {
			t.Error("Exec in an unknown node succeeded")
		}
		if _, err := l.Probe(ctx, ProbeOptions{From: "nosuch", To: netip.MustParseAddr("192.0.2.1")}); err == nil {
			t.Error("Probe from an unknown node succeeded")
		}
		st, err := l.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st {
			for iface, state := range n.Links {
				if state != "up" {
					t.Errorf("%s %s is %s after bad input, want up", n.Node, iface, state)
				}
			}
		}
	})
	t.Run("exec", func(t *testing.T) {
		ns, _ := l.NS("s2gw1")
		out, err := l.Exec(ctx, "s2gw1", "readlink", "/proc/self/ns/net")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(netnsutil.Dir, ns), &st); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("net:[%d]\n", st.Ino); string(out) != want {
			t.Errorf("command ran in %q, want %q", out, want)
		}
		if _, err := l.Exec(ctx, "s2gw1", "false"); err == nil {
			t.Error("Exec of false succeeded")
		}
	})
	t.Run("concurrent probes", func(t *testing.T) {
		// Two ICMP probes in one namespace see every reply on both
		// raw sockets; each must count only its own.
		var ps []*RunningProbe
		for range 2 {
			p, err := l.StartProbe(ctx, ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.1.3"),
				ICMP: true, Interval: 2 * time.Millisecond, Duration: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		for i, p := range ps {
			r := p.Wait()
			if r.Sent == 0 || r.Received != r.Sent || r.Duplicates != 0 {
				t.Errorf("probe %d: sent %d received %d duplicates %d", i, r.Sent, r.Received, r.Duplicates)
			}
		}
	})
	t.Run("poweroff and poweron", func(t *testing.T) {
		p, err := l.StartProbe(ctx, ProbeOptions{From: "s1host", To: netip.MustParseAddr("192.168.1.3"), Duration: -1})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		echo := l.State().Nodes["s1gw2"].EchoPID
		off := time.Now()
		if err := l.Poweroff("s1gw2"); err != nil {
			t.Fatal(err)
		}
		if alive(echo) {
			t.Errorf("echo responder %d alive after poweroff", echo)
		}
		for _, iface := range []string{"wan0", "lan0", "hb0"} {
			waitCarrier(t, l, "s1gw2", iface, false)
		}
		time.Sleep(300 * time.Millisecond)
		on := time.Now()
		if err := l.Poweron(ctx, "s1gw2"); err != nil {
			t.Fatal(err)
		}
		if err := l.Poweron(ctx, "s1gw2"); err == nil {
			t.Error("second Poweron succeeded")
		}
		time.Sleep(300 * time.Millisecond)
		r := p.Stop()
		if len(r.Windows) != 1 {
			t.Fatalf("want one loss window, got %+v", r.Windows)
		}
		w := r.Windows[0]
		if w.StartMS < p.Offset(off)-5 || w.StartMS > p.Offset(on) {
			t.Errorf("loss window %+v does not start at the poweroff (%.1f ms)", w, p.Offset(off))
		}
		if w.EndMS < p.Offset(on) {
			t.Errorf("loss window %+v ends before the poweron (%.1f ms)", w, p.Offset(on))
		}
		st, err := l.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range st {
			if n.Node == "s1gw2" && (n.PoweredOff || n.EchoPID == 0 || n.Links["lan0"] != "up") {
				t.Errorf("after poweron: %+v", n)
			}
		}
	})

	// Everything of the lab, to check Down removes it.
	nss := namespacesWithPrefix(prefix)
	if len(nss) != len(Topology()) {
		t.Errorf("%d namespaces %v, want %d", len(nss), nss, len(Topology()))
	}
	pids, err := pidsIn(nss)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != len(NodeNames()) {
		t.Errorf("%d processes in the lab, want one echo responder per node (%d)", len(pids), len(NodeNames()))
	}
	if _, err := l.Exec(ctx, "s1host", "true"); err != nil {
		t.Fatal(err)
	}
	sleeper, _ := l.Command("s2host", "sleep", "60")
	if err := l.Start("s2host", sleeper); err != nil {
		t.Fatal(err)
	}
	go sleeper.Wait()
	pids = append(pids, sleeper.Process.Pid)

	if err := Down(prefix); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if err := Down(prefix); err != nil {
		t.Fatalf("second Down: %v", err)
	}
	if left := nsNamesWithPrefix(t, prefix); len(left) > 0 {
		t.Errorf("namespaces left after Down: %v", left)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still running after Down", pid)
		}
	}
	if _, err := os.Stat(Dir(prefix)); !os.IsNotExist(err) {
		t.Errorf("state directory left after Down: %v", err)
	}
	if after := rootLinks(t); !slices.Equal(linksBefore, after) {
		t.Errorf("root namespace links changed: before %v after %v", linksBefore, after)
	}
	if _, err := Open(prefix); !errors.Is(err, ErrNoLab) {
		t.Errorf("Open after Down: %v, want ErrNoLab", err)
	}
}

// checkBuilt reads the lab back through netlink and /proc/sys: every
// namespace with lo up and the right forwarding, every port a veth with its
// address whose peer is a port of the right bridge, default routes, inet's
// bridges with their addresses.
func checkBuilt(t *testing.T, prefix string) {
	for _, n := range Topology() {
		ns := prefix + n.Name
		h, err := netnsutil.Handle(ns)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		lo, err := h.LinkByName("lo")
		if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: lo not up (%v)", n.Name, err)
		}
		var fwd []byte
		netnsutil.Do(ns, func() error {
			fwd, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
			return err
		})
		if want := map[bool]string{true: "1\n", false: "0\n"}[n.Forward]; string(fwd) != want {
			t.Errorf("%s: ip_forward %q, want %q", n.Name, fwd, want)
		}
		for _, b := range n.Bridges {
			link, err := h.LinkByName(b.Name)
			if err != nil {
				t.Errorf("%s: bridge %s: %v", n.Name, b.Name, err)
				continue
			}
			if _, ok := link.(*netlink.Bridge); !ok || link.Attrs().Flags&net.FlagUp == 0 {
				t.Errorf("%s: %s is %s, up %v; want an up bridge", n.Name, b.Name, link.Type(), link.Attrs().Flags&net.FlagUp != 0)
			}
			if b.Addr.IsValid() {
				checkAddr(t, h, link, n.Name, b.Addr)
			}
		}
		for _, p := range n.Ports {
			link, err := h.LinkByName(p.Iface)
			if err != nil {
				t.Errorf("%s: %s: %v", n.Name, p.Iface, err)
				continue
			}
			if _, ok := link.(*netlink.Veth); !ok {
				t.Errorf("%s: %s is a %s, want a veth", n.Name, p.Iface, link.Type())
			}
			checkAddr(t, h, link, n.Name, p.Addr)
			sh, err := netnsutil.Handle(prefix + p.Switch)
			if err != nil {
				t.Fatal(err)
			}
			peer, err := sh.LinkByName(p.Peer)
			if err != nil {
				t.Errorf("%s: %s: switch port %s in %s: %v", n.Name, p.Iface, p.Peer, p.Switch, err)
			} else if br, err := sh.LinkByName(p.Bridge); err != nil || peer.Attrs().MasterIndex != br.Attrs().Index {
				t.Errorf("%s: %s: switch port %s is not on bridge %s/%s", n.Name, p.Iface, p.Peer, p.Switch, p.Bridge)
			}
			sh.Close()
		}
		if n.Gateway.IsValid() {
			rs, err := h.RouteList(nil, netlink.FAMILY_V4)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range rs {
				if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
					found = found || r.Gw.Equal(n.Gateway.AsSlice())
				}
			}
			if !found {
				t.Errorf("%s: no default route via %s in %v", n.Name, n.Gateway, rs)
			}
		}
	}
}

func checkAddr(t *testing.T, h *netlink.Handle, link netlink.Link, node string, want netip.Prefix) {
	t.Helper()
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	if !slices.Equal(got, []string{want.String()}) {
		t.Errorf("%s: %s has %v, want %s", node, link.Attrs().Name, got, want)
	}
}

// nsNamesWithPrefix lists every namespace whose name starts with prefix.
func nsNamesWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir(netnsutil.Dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func expectReach(t *testing.T, l *Lab, from, to string, icmp bool) {
	t.Helper()
	r, err := l.Probe(context.Background(), ProbeOptions{
		From: from, To: netip.MustParseAddr(to), ICMP: icmp,
		Interval: 5 * time.Millisecond, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("%s -> %s: %v", from, to, err)
	}
	if r.Sent == 0 || r.Lost != 0 {
		t.Errorf("%s -> %s (%s): sent %d lost %d", from, to, r.Proto, r.Sent, r.Lost)
	}
}

// waitCarrier waits for the interface's carrier, reading the flags and
// oper state through netlink in the node's namespace.
func waitCarrier(t *testing.T, l *Lab, node, iface string, want bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := l.WaitLink(ctx, node, iface, want); err != nil {
		t.Fatal(err)
	}
	ns, _ := l.NS(node)
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	a := link.Attrs()
	if got := a.RawFlags&unix.IFF_LOWER_UP != 0; got != want || (a.OperState == netlink.OperUp) != want {
		t.Fatalf("%s %s: carrier %v oper %v, want carrier %v", node, iface, got, a.OperState, want)
	}
}

// TestDownAfterCrash: a lab whose `up` died half way (state file half
// written, missing, or saying less than what exists) is still removed
// completely, processes included, and nothing else is touched.
func TestDownAfterCrash(t *testing.T) {
	labtest.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		state string // "" = no state file
		nodes []string
	}{
		{"half-written state", `{"prefix": "`, []string{"inet", "s1sw", "s1gw1"}},
		{"no state file", "", []string{"inet", "s1gw1", "s2host"}},
		{"state lists less", `{"prefix": "P", "namespaces": ["Pinet"], "nodes": {}}`, []string{"inet", "s2sw", "s2gw2"}},
		{"more sites than today", "", []string{"inet", "s3gw1", "s3sw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := labtest.Prefix(t)
			t.Cleanup(func() { Down(prefix) })
			// Bystanders: not this lab's, though they share its prefix.
			bystanders := []string{
				labtest.NewNetNS(t, prefix+"other"),
				labtest.NewNetNS(t, prefix+"x-inet"),
			}
			for _, n := range tc.nodes {
				if err := netnsutil.Create(prefix + n); err != nil {
					t.Fatal(err)
				}
			}
			if tc.state != "" {
				if err := os.MkdirAll(Dir(prefix), 0o700); err != nil {
					t.Fatal(err)
				}
				text := strings.ReplaceAll(tc.state, `"P`, `"`+prefix)
				if err := os.WriteFile(statePath(prefix), []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			sleep := exec.Command("sleep", "60")
			if err := netnsutil.Start(prefix+tc.nodes[len(tc.nodes)-1], sleep); err != nil {
				t.Fatal(err)
			}
			waited := make(chan struct{})
			go func() { sleep.Wait(); close(waited) }()
			bystander := exec.Command("sleep", "60")
			if err := netnsutil.Start(bystanders[1], bystander); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { bystander.Process.Kill(); bystander.Wait() })

			if _, err := Up(context.Background(), Options{Prefix: prefix, Bin: "/bin/false"}); err == nil {
				t.Error("Up over a crashed lab succeeded")
			}
			if _, err := Open(prefix); err == nil {
				t.Error("Open of a crashed lab succeeded")
			}
			if err := Down(prefix); err != nil {
				t.Fatalf("Down: %v", err)
			}
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
				t.Error("process inside the lab survived Down")
			}
			if ws, ok := sleep.ProcessState.Sys().(syscall.WaitStatus); ok && !ws.Signaled() {
				t.Errorf("sleep ended without a signal: %v", ws)
			}
			left := nsNamesWithPrefix(t, prefix)
			slices.Sort(left)
			if want := []string{prefix + "other", prefix + "x-inet"}; !slices.Equal(left, want) {
				t.Errorf("namespaces after Down: %v, want only the bystanders %v", left, want)
			}
			if !alive(bystander.Process.Pid) {
				t.Error("Down killed a process outside the lab")
			}
			if _, err := os.Stat(Dir(prefix)); !os.IsNotExist(err) {
				t.Errorf("state dir left: %v", err)
			}
			if err := Down(prefix); err != nil {
				t.Errorf("second Down: %v", err)
			}
		})
	}
}

// TestUpRefused: Up with options it cannot honour, or over namespaces left
// behind, fails with a clear error and makes nothing.
func TestUpRefused(t *testing.T) {
	labtest.RequireRoot(t)
	prefix := labtest.Prefix(t)
	leftover := labtest.NewNetNS(t, prefix+"inet")
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"three sites", Options{Prefix: labtest.Prefix(t), Sites: 3}, "only 2 sites"},
		{"bad prefix", Options{Prefix: "Bad/Prefix"}, "prefix"},
		{"long prefix", Options{Prefix: "abcdefghijklmnop"}, "prefix"},
		{"left-over namespace", Options{Prefix: prefix}, "exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Up(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Up: %v, want an error about %q", err, tc.want)
			}
			if tc.o.Prefix != prefix {
				if ns := nsNamesWithPrefix(t, tc.o.Prefix); len(ns) > 0 {
					t.Errorf("namespaces made: %v", ns)
				}
			}
			if _, err := os.Stat(Dir(tc.o.Prefix)); !os.IsNotExist(err) {
				t.Errorf("state dir made: %v", err)
			}
		})
	}
	if !netnsutil.Exists(leftover) {
		t.Error("refused Up removed the left-over namespace")
	}
}

// TestNotRoot: without root, Up, Open and Down say so and do nothing.
func TestNotRoot(t *testing.T) {
	labtest.RequireRoot(t) // to become someone else
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "havpn-lab-notroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "lab.test")
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	prefix := labtest.Prefix(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"HAVPN_LAB_TEST_NOTROOT=" + prefix}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q, want three errors", out)
	}
	for i, line := range lines {
		if line != ErrNotRoot.Error() {
			t.Errorf("%s as nobody: %q, want %q", []string{"Up", "Open", "Down"}[i], line, ErrNotRoot)
		}
	}
	if ns := nsNamesWithPrefix(t, prefix); len(ns) > 0 {
		t.Errorf("namespaces made: %v", ns)
	}
}

// TestProbeAccounting checks loss windows, late, reordered, duplicated and
// foreign replies on a made-up record.
func TestProbeAccounting(t *testing.T) {
	const token = 0x1234
	type reply struct {
		seq   int
		at    time.Duration
		token uint64
	}
	for _, tc := range []struct {
		name      string
		sent      int
		replies   []reply
		received  int
		dups      int
		windows   [][2]int // first, last seq
		durations []float64
	}{
		{name: "all in", sent: 5, replies: []reply{{0, 1, 0}, {1, 2, 0}, {2, 3, 0}, {3, 4, 0}, {4, 5, 0}}, received: 5},
		{name: "window in the middle", sent: 6, replies: []reply{{0, 1, 0}, {1, 2, 0}, {4, 5, 0}, {5, 6, 0}},
			received: 4, windows: [][2]int{{2, 3}}, durations: []float64{20}},
		{name: "window at the start and the end", sent: 6, replies: []reply{{2, 3, 0}, {3, 4, 0}},
			received: 2, windows: [][2]int{{0, 1}, {4, 5}}, durations: []float64{20, 20}},
		{name: "late and reordered count", sent: 4, replies: []reply{{1, 2, 0}, {3, 4, 0}, {0, 90, 0}, {2, 95, 0}}, received: 4},
		{name: "duplicates count once", sent: 3, replies: []reply{{0, 1, 0}, {0, 2, 0}, {1, 3, 0}, {2, 4, 0}, {2, 5, 0}},
			received: 3, dups: 2},
		{name: "other probe's replies ignored", sent: 3, replies: []reply{{0, 1, 0}, {1, 2, 99}, {2, 3, 0}},
			received: 2, windows: [][2]int{{1, 1}}, durations: []float64{10}},
		{name: "unknown seq ignored", sent: 2, replies: []reply{{0, 1, 0}, {1, 2, 0}, {7, 3, 0}}, received: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lg := &probeLog{first: make(chan struct{}), reply: make(chan struct{}, 1)}
			for i := range tc.sent {
				lg.sentAt = append(lg.sentAt, time.Duration(i)*10*time.Millisecond)
				lg.recvAt = append(lg.recvAt, 0)
			}
			for _, r := range tc.replies {
				b := make([]byte, 64)
				binary.BigEndian.PutUint64(b, uint64(r.seq))
				tok := uint64(token)
				if r.token != 0 {
					tok = r.token
				}
				binary.BigEndian.PutUint64(b[8:], tok)
				lg.record(b, token, time.Duration(r.seq)*10*time.Millisecond+r.at*time.Millisecond)
			}
			lg.record([]byte("short"), token, time.Millisecond)
			res := lg.result(ProbeOptions{To: netip.MustParseAddr("192.0.2.1"), Interval: 10 * time.Millisecond, Timeline: true})
			if res.Sent != tc.sent || res.Received != tc.received || res.Lost != tc.sent-tc.received || res.Duplicates != tc.dups {
				t.Errorf("sent %d received %d lost %d dups %d, want %d %d %d %d",
					res.Sent, res.Received, res.Lost, res.Duplicates, tc.sent, tc.received, tc.sent-tc.received, tc.dups)
			}
			var got [][2]int
			var durs []float64
			for _, w := range res.Windows {
				got = append(got, [2]int{w.FirstSeq, w.LastSeq})
				durs = append(durs, w.DurationMS)
				if w.Lost != w.LastSeq-w.FirstSeq+1 {
					t.Errorf("window %+v: lost does not match its sequence numbers", w)
				}
			}
			if !slices.Equal(got, tc.windows) || !slices.Equal(durs, tc.durations) {
				t.Errorf("windows %v durations %v, want %v %v", got, durs, tc.windows, tc.durations)
			}
			if len(res.Packets) != tc.sent {
				t.Fatalf("%d packets in the timeline, want %d", len(res.Packets), tc.sent)
			}
			lost := 0
			for _, p := range res.Packets {
				if p.RecvMS < 0 {
					lost++
				} else if p.RecvMS < p.SentMS {
					t.Errorf("packet %+v received before sent", p)
				}
			}
			if lost != res.Lost {
				t.Errorf("timeline has %d lost, result %d", lost, res.Lost)
			}
		})
	}
}

func TestProbeOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    ProbeOptions
	}{
		{"no destination", ProbeOptions{}},
		{"tiny size", ProbeOptions{To: netip.MustParseAddr("192.0.2.1"), Size: 8}},
		{"huge size", ProbeOptions{To: netip.MustParseAddr("192.0.2.1"), Size: 70000}},
		{"icmp to ipv6", ProbeOptions{To: netip.MustParseAddr("2001:db8::1"), ICMP: true}},
		{"bad port", ProbeOptions{To: netip.MustParseAddr("192.0.2.1"), Port: 70000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.o.defaults(); err == nil {
				t.Errorf("%+v accepted", tc.o)
			}
		})
	}
}

// TestDaemonConfigsValidate: the config lab up writes for every gateway
// loads and validates, and says what the lab needs.
func TestDaemonConfigsValidate(t *testing.T) {
	dir := t.TempDir()
	key := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat(name[len(name)-2:], n)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keys := LabKeys{
		Cluster:  [2]string{key("c01", 32), key("c02", 32)},
		Site1To2: key("s12", 36), Site2To1: key("s21", 36),
	}
	if err := labPKI(dir, &keys); err != nil {
		t.Fatal(err)
	}
	for _, o := range []DaemonOptions{
		{},
		{Keying: "manual", Routing: "static", AutoFailback: true, Keepalive: 10 * time.Millisecond, Deadtime: 30 * time.Millisecond},
		{Keying: "ike", Routing: "static", Keepalive: 2 * time.Second, Deadtime: 10 * time.Second},
	} {
		t.Run(fmt.Sprintf("%s-%s-%v", o.Keying, o.Routing, o.Keepalive), func(t *testing.T) { checkDaemonConfigs(t, dir, keys, o) })
	}
	if _, err := DaemonConfig("havpn-", "s1host", keys, DaemonOptions{}); err == nil {
		t.Error("DaemonConfig for a host succeeded")
	}
	for _, o := range []DaemonOptions{{Keying: "none"}, {Routing: "ospf"}, {Keepalive: time.Second, Deadtime: time.Second}} {
		if _, err := DaemonConfig("havpn-", "s1gw1", keys, o); err == nil {
			t.Errorf("DaemonConfig with %+v succeeded", o)
		}
	}
}

func checkDaemonConfigs(t *testing.T, dir string, keys LabKeys, o DaemonOptions) {
	want, _ := o.withDefaults()
	for _, gw := range Gateways() {
		text, err := DaemonConfig("havpn-", gw, keys, o)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, gw+".yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(p)
		if err != nil {
			t.Errorf("generated config for %s does not validate:\n%v\n%s", gw, err, text)
			continue
		}
		spec, _ := Spec(gw)
		if c.Node.Name != gw || c.Node.Site != fmt.Sprintf("site%d", spec.Site) ||
			c.Control.Socket != socketPath("havpn-", gw) || c.Metrics.Listen != "127.0.0.1:9740" {
			t.Errorf("%s: node %+v control %+v metrics %+v", gw, c.Node, c.Control, c.Metrics)
		}
		if c.Cluster == nil || len(c.Cluster.Links) != 3 || len(c.Tunnels) != 1 || string(c.Tunnels[0].Keying) != want.Keying {
			t.Fatalf("%s: want a cluster over 3 links and a tunnel keyed %s, got %+v %+v", gw, want.Keying, c.Cluster, c.Tunnels)
		}
		if c.Cluster.AutoFailback != o.AutoFailback || (o.Keepalive != 0 && time.Duration(c.Cluster.Timers.Keepalive) != o.Keepalive) ||
			(o.Deadtime != 0 && time.Duration(c.Cluster.Timers.Deadtime) != o.Deadtime) {
			t.Errorf("%s: cluster %+v, want %+v", gw, c.Cluster, o)
		}
		other := SiteInfo(3 - spec.Site).LAN
		static := len(c.Tunnels[0].Routes) == 1 && c.Tunnels[0].Routes[0] == other
		if bgp := c.BGP != nil; bgp != (want.Routing == "bgp") || static != (want.Routing == "static") {
			t.Errorf("%s: routing %s: bgp %+v, tunnel routes %v", gw, want.Routing, c.BGP, c.Tunnels[0].Routes)
		}
	}
}

func TestTopologyMatchesDesign(t *testing.T) {
	want := map[string][]string{
		"s1gw1":  {"wan0 198.51.100.2/28", "lan0 192.168.1.2/24", "hb0 192.0.2.1/30"},
		"s1gw2":  {"wan0 198.51.100.3/28", "lan0 192.168.1.3/24", "hb0 192.0.2.2/30"},
		"s2gw1":  {"wan0 203.0.113.2/28", "lan0 192.168.2.2/24", "hb0 192.0.2.5/30"},
		"s2gw2":  {"wan0 203.0.113.3/28", "lan0 192.168.2.3/24", "hb0 192.0.2.6/30"},
		"s1host": {"eth0 192.168.1.10/24"},
		"s2host": {"eth0 192.168.2.10/24"},
	}
	for node, ports := range want {
		spec, ok := Spec(node)
		if !ok {
			t.Fatalf("no node %s", node)
		}
		var got []string
		for _, p := range spec.Ports {
			got = append(got, p.Iface+" "+p.Addr.String())
		}
		if !slices.Equal(got, ports) {
			t.Errorf("%s: ports %v, want %v", node, got, ports)
		}
	}
}
