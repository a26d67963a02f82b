package lab

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
func TestMain(m *testing.M) {
	if len(os.Args) == 5 && os.Args[1] == "lab" && os.Args[2] == "echo" {
		port, _ := strconv.Atoi(os.Args[4])
		if err := Echo(context.Background(), port); err != nil {
			os.Exit(1)
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
		if err := l.Plug("s1gw1", "lan0"); err != nil {
			t.Fatal(err)
		}
		waitCarrier(t, l, "s1gw1", "lan0", true)
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
		if err := l.Kill("s1gw1"); err == nil {
			t.Error("Kill with no daemon succeeded")
		}
	})

	echoPIDs := []int{}
	for _, n := range l.State().Nodes {
		if n.EchoPID > 0 {
			echoPIDs = append(echoPIDs, n.EchoPID)
		}
	}
	if len(echoPIDs) != len(NodeNames()) {
		t.Errorf("%d echo responders, want one per node (%d)", len(echoPIDs), len(NodeNames()))
	}
	if err := Down(prefix); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if err := Down(prefix); err != nil {
		t.Fatalf("second Down: %v", err)
	}
	if left := namespacesWithPrefix(prefix); len(left) > 0 {
		t.Errorf("namespaces left after Down: %v", left)
	}
	for _, pid := range echoPIDs {
		if alive(pid) {
			t.Errorf("echo responder %d still running after Down", pid)
		}
	}
	if _, err := os.Stat(Dir(prefix)); !os.IsNotExist(err) {
		t.Errorf("state directory left after Down: %v", err)
	}
	if after := rootLinks(t); !slices.Equal(linksBefore, after) {
		t.Errorf("root namespace links changed: before %v after %v", linksBefore, after)
	}
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

func waitCarrier(t *testing.T, l *Lab, node, iface string, want bool) {
	t.Helper()
	ns, _ := l.NS(node)
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		link, err := h.LinkByName(iface)
		if err != nil {
			t.Fatal(err)
		}
		got := link.Attrs().RawFlags&unix.IFF_LOWER_UP != 0
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s carrier = %v, want %v (oper %v)", node, iface, got, want, link.Attrs().OperState)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDownAfterCrash: a lab whose `up` died half way (damaged state file,
// a process inside) is still removed completely.
func TestDownAfterCrash(t *testing.T) {
	labtest.RequireRoot(t)
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { Down(prefix) })
	for _, n := range []string{"inet", "s1gw1"} {
		if err := netnsutil.Create(prefix + n); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(Dir(prefix), 0o700)
	os.WriteFile(statePath(prefix), []byte(`{"prefix": "`), 0o600)
	sleep := exec.Command("sleep", "60")
	if err := netnsutil.Start(prefix+"s1gw1", sleep); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { sleep.Wait(); close(waited) }()
	if _, err := Open(prefix); err == nil {
		t.Error("Open of a damaged state file succeeded")
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
	if left := namespacesWithPrefix(prefix); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if _, err := os.Stat(filepath.Join(Dir(prefix))); !os.IsNotExist(err) {
		t.Errorf("state dir left: %v", err)
	}
}

func TestDaemonConfigsValidate(t *testing.T) {
	for _, gw := range Gateways() {
		text, err := DaemonConfig("havpn-", gw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(gw+".yaml", []byte(text)); err != nil {
			t.Errorf("generated config for %s does not validate:\n%v\n%s", gw, err, text)
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
