package bgp_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/bgp/bgptest"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The interop tests peer havpn (a bgptest helper process in namespace
// <prefix>h) with FRR bgpd+zebra (in <prefix>f) over a veth:
//
//	<prefix>h: h0 172.16.0.1/30, lan0 192.168.1.1/24, static 10.11.0.0/16 via 192.168.1.254
//	<prefix>f: f0 172.16.0.2/30, lan0 192.168.2.1/24, bgp networks 192.168.2.0/24, 10.22.0.0/16
//
// havpn redistributes connected (through a prefix list: only the LAN) and
// static routes; FRR announces two networks. Both sides must install the
// other's routes, and remove them when the session drops: FRR's bgpd
// killed (SIGKILL), the cable pulled (f0 set down: h0 loses carrier and
// havpn resets the session), FRR's bgpd frozen (SIGSTOP: the 3s hold timer
// ends the session), and havpn's speaker stopped.

const (
	frrDir   = "/usr/lib/frr"
	protoBGP = 186
)

type lab struct {
	t        *testing.T
	h, f     string // namespace names
	hh, fh   *netlink.Handle
	run      string // FRR run directory
	zebra    *exec.Cmd
	bgpd     *exec.Cmd
	bgpdConf string
	helper   *bgptest.Helper
}

func requireFRR(t *testing.T) {
	t.Helper()
	labtest.RequireRoot(t)
	labtest.RequireCommand(t, frrDir+"/bgpd")
	labtest.RequireCommand(t, frrDir+"/zebra")
}

func newLab(t *testing.T) *lab {
	t.Helper()
	p := labtest.Prefix(t)
	l := &lab{t: t, h: labtest.NewNetNS(t, p+"h"), f: labtest.NewNetNS(t, p+"f")}
	var err error
	if l.hh, err = netnsutil.Handle(l.h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.hh.Close)
	if l.fh, err = netnsutil.Handle(l.f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.fh.Close)
	fns, err := netns.GetFromName(l.f)
	if err != nil {
		t.Fatal(err)
	}
	defer fns.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "h0"
	if err := l.hh.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "f0", PeerNamespace: netlink.NsFd(int(fns))}); err != nil {
		t.Fatal(err)
	}
	l.addr(l.hh, "h0", "172.16.0.1/30")
	l.addr(l.fh, "f0", "172.16.0.2/30")
	l.up(l.hh, "h0")
	l.up(l.fh, "f0")
	for _, x := range []struct {
		h    *netlink.Handle
		cidr string
	}{{l.hh, "192.168.1.1/24"}, {l.fh, "192.168.2.1/24"}} {
		la := netlink.NewLinkAttrs()
		la.Name = "lan0"
		if err := x.h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "lan0p"}); err != nil {
			t.Fatal(err)
		}
		l.addr(x.h, "lan0", x.cidr)
		l.up(x.h, "lan0")
		l.up(x.h, "lan0p")
	}
	_, dst, _ := net.ParseCIDR("10.11.0.0/16")
	if err := l.hh.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("192.168.1.254"), Protocol: unix.RTPROT_STATIC}); err != nil {
		t.Fatal(err)
	}

	// FRR's run directory must be reachable by user frr.
	dir, err := os.MkdirTemp("", "havpn-frr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup("frr")
	if err != nil {
		t.Fatalf("FRR's user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	l.run = dir
	return l
}

func (l *lab) addr(h *netlink.Handle, dev, cidr string) {
	l.t.Helper()
	link, err := h.LinkByName(dev)
	if err != nil {
		l.t.Fatal(err)
	}
	a, _ := netlink.ParseAddr(cidr)
	if err := h.AddrAdd(link, a); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) up(h *netlink.Handle, dev string) {
	l.t.Helper()
	link, err := h.LinkByName(dev)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := h.LinkSetUp(link); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) down(h *netlink.Handle, dev string) {
	l.t.Helper()
	link, err := h.LinkByName(dev)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := h.LinkSetDown(link); err != nil {
		l.t.Fatal(err)
	}
}

// frrDaemon starts one FRR daemon in the foreground inside namespace f.
func (l *lab) frrDaemon(name string) *exec.Cmd {
	l.t.Helper()
	logf, err := os.OpenFile(filepath.Join(l.run, name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(frrDir, name), "-u", "frr", "-g", "frr",
		"-z", filepath.Join(l.run, "zserv.api"), "--vty_socket", l.run,
		"-i", filepath.Join(l.run, name+".pid"), "-f", filepath.Join(l.run, name+".conf"), "-P", "0")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := netnsutil.Start(l.f, cmd); err != nil {
		l.t.Fatalf("starting %s: %v", name, err)
	}
	l.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func (l *lab) writeFRR(name, conf string) {
	l.t.Helper()
	if err := os.WriteFile(filepath.Join(l.run, name+".conf"), []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// startFRR starts zebra and bgpd with bgpd.conf = conf.
func (l *lab) startFRR(conf string) {
	l.t.Helper()
	l.writeFRR("zebra", "hostname f\nlog file "+filepath.Join(l.run, "zebra.log")+" informational\n")
	l.writeFRR("bgpd", conf)
	l.zebra = l.frrDaemon("zebra")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(l.run, "zserv.api")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("zebra did not create its socket; log:\n%s", l.frrLogs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.bgpd = l.frrDaemon("bgpd")
}

func (l *lab) killBgpd() {
	l.t.Helper()
	if err := l.bgpd.Process.Signal(syscall.SIGKILL); err != nil {
		l.t.Fatal(err)
	}
	l.bgpd.Wait()
}

func (l *lab) frrLogs() string {
	var b bytes.Buffer
	for _, f := range []string{"zebra.out", "zebra.log", "bgpd.out", "bgpd.log"} {
		data, _ := os.ReadFile(filepath.Join(l.run, f))
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", f, data)
	}
	if out, err := exec.Command("vtysh", "--vty_socket", l.run, "-c", "show bgp summary").CombinedOutput(); err == nil {
		fmt.Fprintf(&b, "== show bgp summary\n%s\n", out)
	}
	return b.String()
}

// bgpRoutes lists the proto 186 routes of a namespace as "prefix via gw".
func bgpRoutes(t *testing.T, h *netlink.Handle) string {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: protoBGP}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range rs {
		s := r.Dst.String()
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		for _, nh := range r.MultiPath {
			s += " via " + nh.Gw.String()
		}
		lines = append(lines, s)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// waitRoutes waits up to timeout for the proto 186 routes of h to be want
// and returns how long it took.
func (l *lab) waitRoutes(what string, h *netlink.Handle, want string, timeout time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	for {
		got := bgpRoutes(l.t, h)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			var nbs string
			if l.helper != nil {
				n, err := l.helper.Neighbors()
				nbs = fmt.Sprintf("%+v %v", n, err)
			}
			l.t.Fatalf("%s: routes after %v:\n%s\nwant:\n%s\nhavpn neighbors: %s\n%s", what, timeout, got, want, nbs, l.frrLogs())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func frrConf(run string, asn, peerAS uint32, gr bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname f\nlog file %s informational\n", filepath.Join(run, "bgpd.log"))
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id 172.16.0.2\n no bgp ebgp-requires-policy\n no bgp network import-check\n bgp log-neighbor-changes\n", asn)
	if gr {
		b.WriteString(" bgp graceful-restart\n bgp graceful-restart restart-time 5\n")
	}
	fmt.Fprintf(&b, " neighbor 172.16.0.1 remote-as %d\n neighbor 172.16.0.1 timers 1 3\n neighbor 172.16.0.1 timers connect 1\n", peerAS)
	b.WriteString(" address-family ipv4 unicast\n  network 192.168.2.0/24\n  network 10.22.0.0/16\n exit-address-family\n")
	return b.String()
}

func havpnConf(asn, peerAS uint32, gr bool) *config.BGP {
	return &config.BGP{
		ASN: asn, RouterID: netip.MustParseAddr("172.16.0.1"), ListenPort: 179,
		Neighbors: []config.Neighbor{{
			Address: netip.MustParseAddr("172.16.0.2"), RemoteAS: peerAS, NextHopSelf: true,
			HoldTime: config.Duration(3 * time.Second), Keepalive: config.Duration(time.Second),
			GracefulRestart: gr,
		}},
		PrefixLists: []config.PrefixList{{Name: "lan", Rules: []config.PrefixRule{
			{Action: config.Permit, Prefix: netip.MustParsePrefix("192.168.1.0/24"), GE: 24, LE: 24},
		}}},
		Redistribute: []config.Redistribute{
			{Source: config.RedistConnected, PrefixList: "lan"},
			{Source: config.RedistStatic},
		},
		FIB: config.FIB{Table: 254, Protocol: protoBGP, Multipath: true},
	}
}

func (l *lab) startHavpn(cfg *config.BGP) {
	l.t.Helper()
	logw := new(syncWriter)
	h, err := bgptest.Start(l.h, cfg, l.t.TempDir(), []string{"-test.run=^$"}, logw)
	if err != nil {
		l.t.Fatal(err)
	}
	l.helper = h
	l.t.Cleanup(func() {
		if err := h.Close(); err != nil {
			l.t.Errorf("closing the havpn helper: %v", err)
		}
		if l.t.Failed() || testing.Verbose() {
			l.t.Logf("havpn helper log:\n%s", logw.String())
		}
	})
}

const (
	fromFRR   = "10.22.0.0/16 via 172.16.0.2\n192.168.2.0/24 via 172.16.0.2"
	fromHavpn = "10.11.0.0/16 via 172.16.0.1\n192.168.1.0/24 via 172.16.0.1"
)

func TestInteropFRR(t *testing.T) {
	requireFRR(t)
	for _, tc := range []struct {
		name       string
		asn, frrAS uint32
	}{
		{"ibgp", 65432, 65432},
		{"ebgp", 65001, 65002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			l.startFRR(frrConf(l.run, tc.frrAS, tc.asn, false))
			l.startHavpn(havpnConf(tc.asn, tc.frrAS, false))

			d := l.waitRoutes("havpn's kernel", l.hh, fromFRR, 30*time.Second)
			l.waitRoutes("FRR's kernel", l.fh, fromHavpn, 10*time.Second)
			t.Logf("converged after %v", d)
			nbs, err := l.helper.Neighbors()
			// FRR sends 2 routes, and over eBGP also havpn's own back (AS
			// path 65002 65001), which havpn drops as an AS loop but
			// counts as received.
			wantRcvd := uint64(2)
			if tc.asn != tc.frrAS {
				wantRcvd = 4
			}
			if err != nil || len(nbs) != 1 || nbs[0].State != "established" || nbs[0].PrefixesReceived != wantRcvd || nbs[0].PrefixesAdvertised != 2 {
				t.Errorf("havpn neighbors = %+v, %v", nbs, err)
			}
			rs, err := l.helper.Routes()
			if err != nil {
				t.Fatal(err)
			}
			installed := 0
			for _, r := range rs {
				if r.Installed {
					installed++
				}
			}
			if installed != 2 {
				t.Errorf("havpn routes (2 installed expected): %+v", rs)
			}

			// FRR's bgpd dies: its routes leave havpn's kernel.
			start := time.Now()
			l.killBgpd()
			l.waitRoutes("havpn's kernel after bgpd was killed", l.hh, "", 10*time.Second)
			t.Logf("bgpd killed: FRR's routes gone from havpn's kernel after %v", time.Since(start))

			// bgpd comes back: routes come back both ways.
			l.bgpd = l.frrDaemon("bgpd")
			d = l.waitRoutes("havpn's kernel after bgpd restart", l.hh, fromFRR, 30*time.Second)
			l.waitRoutes("FRR's kernel after bgpd restart", l.fh, fromHavpn, 10*time.Second)
			t.Logf("bgpd restarted: converged after %v", d)

			// Cable pulled on FRR's side: h0 loses its carrier and havpn
			// resets the session at once (not after the 3s hold time);
			// FRR drops havpn's routes on its link going down.
			start = time.Now()
			l.down(l.fh, "f0")
			l.waitRoutes("havpn's kernel after unplug", l.hh, "", 10*time.Second)
			if d := time.Since(start); d > 2500*time.Millisecond {
				t.Errorf("unplugged: FRR's routes left havpn's kernel after %v, want well under the 3s hold time", d)
			} else {
				t.Logf("unplugged: FRR's routes gone from havpn's kernel after %v", d)
			}
			l.waitRoutes("FRR's kernel after unplug", l.fh, "", 10*time.Second)

			// Plugged back.
			l.up(l.fh, "f0")
			d = l.waitRoutes("havpn's kernel after plug", l.hh, fromFRR, 30*time.Second)
			l.waitRoutes("FRR's kernel after plug", l.fh, fromHavpn, 10*time.Second)
			t.Logf("plugged: converged after %v", d)

			// FRR's bgpd frozen (SIGSTOP): the link and TCP stay up, no
			// keepalives come; havpn's hold timer (3s) ends the session.
			start = time.Now()
			if err := l.bgpd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			l.waitRoutes("havpn's kernel with bgpd frozen", l.hh, "", 10*time.Second)
			if d := time.Since(start); d < 2*time.Second {
				t.Errorf("frozen: routes gone after %v, before the hold time could expire", d)
			} else {
				t.Logf("frozen: FRR's routes gone from havpn's kernel after %v (hold time 3s)", d)
			}
			if err := l.bgpd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			l.waitRoutes("havpn's kernel after bgpd thawed", l.hh, fromFRR, 30*time.Second)
			l.waitRoutes("FRR's kernel after bgpd thawed", l.fh, fromHavpn, 10*time.Second)

			// havpn released (resource stop): withdraws, and cleans its
			// own kernel.
			start = time.Now()
			if err := l.helper.StopSpeaker(); err != nil {
				t.Fatal(err)
			}
			if got := bgpRoutes(t, l.hh); got != "" {
				t.Errorf("havpn's kernel after Stop:\n%s", got)
			}
			l.waitRoutes("FRR's kernel after havpn stopped", l.fh, "", 10*time.Second)
			t.Logf("havpn stopped: its routes gone from FRR's kernel after %v", time.Since(start))
			// And taken over again.
			if err := l.helper.StartSpeaker(); err != nil {
				t.Fatal(err)
			}
			l.waitRoutes("havpn's kernel after restart", l.hh, fromFRR, 30*time.Second)
			l.waitRoutes("FRR's kernel after havpn restart", l.fh, fromHavpn, 10*time.Second)
		})
	}
}

// TestInteropFRRGracefulRestart: FRR restarts with graceful restart
// (restart time 5s); havpn, as helper (RFC 4724), keeps FRR's routes in
// the kernel while FRR is away, and removes them when the restart time is
// over without FRR back.
func TestInteropFRRGracefulRestart(t *testing.T) {
	requireFRR(t)
	l := newLab(t)
	l.startFRR(frrConf(l.run, 65432, 65432, true))
	l.startHavpn(havpnConf(65432, 65432, true))
	l.waitRoutes("havpn's kernel", l.hh, fromFRR, 30*time.Second)
	l.waitRoutes("FRR's kernel", l.fh, fromHavpn, 10*time.Second)

	start := time.Now()
	l.killBgpd()
	time.Sleep(2 * time.Second)
	if got := bgpRoutes(t, l.hh); got != fromFRR {
		t.Fatalf("2s after FRR's bgpd died, havpn's kernel has:\n%s\nwant FRR's routes kept (stale):\n%s", got, fromFRR)
	}
	rs, err := l.helper.Routes()
	if err != nil {
		t.Fatal(err)
	}
	stale := 0
	for _, r := range rs {
		if r.Stale {
			stale++
		}
	}
	if stale != 2 {
		t.Errorf("want FRR's 2 routes marked stale: %+v", rs)
	}
	l.waitRoutes("havpn's kernel after the restart time", l.hh, "", 15*time.Second)
	if d := time.Since(start); d < 4*time.Second {
		t.Errorf("stale routes removed after %v, before the 5s restart time", d)
	}
	t.Logf("stale routes removed %v after bgpd died (restart time 5s)", time.Since(start))
}

// syncWriter is a buffer safe for the helper's stderr copier and the test
// reading it.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestLabConfigsPeer runs two havpn speakers with the bgp sections of the
// lab's s1gw1 and s2gw1 configs in two namespaces joined by a veth standing
// in for the tunnel (172.16.0.1/30 - 172.16.0.2/30): each must install the
// other site's LAN through the other's tunnel address, and nothing else (a
// point-to-point host route inside its own LAN range is not announced).
func TestLabConfigsPeer(t *testing.T) {
	labtest.RequireRoot(t)
	l := newLab(t)
	// A point-to-point address on s1's side: its connected /32 to the
	// peer lies inside site1-lan (le 32) but must not be redistributed.
	link, err := l.hh.LinkByName("lan0p")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr("192.168.1.50/32")
	_, peer, _ := net.ParseCIDR("192.168.1.51/32")
	a.Peer = peer
	if err := l.hh.AddrAdd(link, a); err != nil {
		t.Fatal(err)
	}
	dir := examplesTree(t)
	s1 := exampleBGP(t, dir, "lab/s1gw1.yaml")
	s2 := exampleBGP(t, dir, "lab/s2gw1.yaml")
	l.startHavpn(s1)
	logw := new(syncWriter)
	h2, err := bgptest.Start(l.f, s2, t.TempDir(), []string{"-test.run=^$"}, logw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h2.Close(); err != nil {
			t.Errorf("closing s2's helper: %v", err)
		}
		if t.Failed() {
			t.Logf("s2 log:\n%s", logw.String())
		}
	})
	d := l.waitRoutes("s1's kernel", l.hh, "192.168.2.0/24 via 172.16.0.2", 30*time.Second)
	l.waitRoutes("s2's kernel", l.fh, "192.168.1.0/24 via 172.16.0.1", 10*time.Second)
	t.Logf("lab configs converged after %v", d)
	rs, err := h2.Routes()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Prefix.Bits() == 32 || r.Prefix.Addr().String() == "10.11.0.0" {
			t.Errorf("s2 learned %s", r.Prefix)
		}
	}
}
