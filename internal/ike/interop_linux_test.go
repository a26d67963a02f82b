//go:build linux

package ike

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/ike/pki"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/havpn/havpn/internal/tunnel"
	"github.com/havpn/havpn/internal/tunnel/esp"
)

// The interop tests run havpn's IKE against strongSwan's charon (with
// kernel-libipsec, recipe in shared/interop/DATAPLANE.md) in two network
// namespaces:
//
//	ns h (havpn, in this process)        ns s (charon)
//	va 198.51.100.1/24  <--- veth --->   vb 198.51.100.2/24
//	lan0 192.168.1.1/24                  lan0 192.168.2.1/24
//	ss0: havpn's TUN, 192.168.2.0/24     ipsec0: libipsec's TUN
//
// havpn's side is the real dataplane: a tunnel.Manager with one mode ip
// tunnel (IP-in-ESP in UDP 4500, subnet traffic selectors from
// tunnels[].ike.local_ts/remote_ts) keyed by the IKE daemon the way
// internal/daemon does it (FromConfig, the Manager's socket owns the NAT-T
// port and hands IKE over, dataplaneInstaller). A ping between the LANs,
// either way, therefore only succeeds if both directions' keys, SPIs and
// selectors match strongSwan's.

const charonPath = "/usr/lib/ipsec/charon"

// hvAddr is havpn's address in every topology.
var hvAddr = netip.MustParseAddr("198.51.100.1")

// runIn runs cmd inside namespace ns and returns its output.
func runIn(ns string, cmd *exec.Cmd) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := netnsutil.Start(ns, cmd); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return out.String(), err
}

type ssLab struct {
	t      testing.TB
	h, s   string     // namespace names
	r      string     // router namespace (NAT topology only)
	ssAddr netip.Addr // strongSwan's address as havpn sees it
	conf   string     // strongSwan config dir
	run    string     // charon's /run
	vici   string     // socket path
	charon *exec.Cmd
}

func requireStrongSwan(t testing.TB) {
	labtest.RequireRoot(t)
	labtest.RequireCommand(t, "swanctl")
	labtest.RequireCommand(t, "unshare")
	labtest.RequireCommand(t, "ping")
	labtest.RequireCommand(t, charonPath)
}

func newSSLab(t testing.TB) *ssLab {
	l := newSSLabTopo(t, false)
	l.startCharon()
	return l
}

// newSSLabTopo builds the namespaces; with nat, a router namespace r sits
// between h and s and masquerades h (nftables):
//
//	h va 198.51.100.1/24 -- vr1 198.51.100.254 [r, masquerade] vr2 203.0.113.254 -- vb 203.0.113.2/24 s
func newSSLabTopo(t testing.TB, nat bool) *ssLab {
	t.Helper()
	labtest.RequireRoot(t)
	if nat {
		labtest.RequireCommand(t, "nft")
	}
	p := labtest.Prefix(t)
	l := &ssLab{t: t, h: labtest.NewNetNS(t, p+"h"), s: labtest.NewNetNS(t, p+"s"), ssAddr: netip.MustParseAddr("198.51.100.2")}
	handle := func(ns string) *netlink.Handle {
		h, err := netnsutil.Handle(ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		return h
	}
	veth := func(h *netlink.Handle, name, peer, peerNS string) {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}
		if peerNS != "" {
			ns, err := netns.GetFromName(peerNS)
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Close()
			v.PeerNamespace = netlink.NsFd(int(ns))
		}
		if err := h.LinkAdd(v); err != nil {
			t.Fatal(err)
		}
	}
	up := func(h *netlink.Handle, name, addr string) {
		link, err := h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if addr != "" {
			a, err := netlink.ParseAddr(addr)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.AddrAdd(link, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	hh, hs := handle(l.h), handle(l.s)
	veth(hs, "lan0", "lan0p", "")
	up(hs, "lan0", "192.168.2.1/24")
	up(hs, "lan0p", "")
	veth(hh, "lan0", "lan0p", "")
	up(hh, "lan0", "192.168.1.1/24")
	up(hh, "lan0p", "")
	if !nat {
		veth(hh, "va", "vb", l.s)
		up(hh, "va", "198.51.100.1/24")
		up(hs, "vb", "198.51.100.2/24")
	} else {
		l.r = labtest.NewNetNS(t, p+"r")
		l.ssAddr = netip.MustParseAddr("203.0.113.2")
		hr := handle(l.r)
		veth(hh, "va", "vr1", l.r)
		veth(hr, "vr2", "vb", l.s)
		up(hh, "va", "198.51.100.1/24")
		up(hr, "vr1", "198.51.100.254/24")
		up(hr, "vr2", "203.0.113.254/24")
		up(hs, "vb", "203.0.113.2/24")
		va, err := hh.LinkByName("va")
		if err != nil {
			t.Fatal(err)
		}
		if err := hh.RouteAdd(&netlink.Route{LinkIndex: va.Attrs().Index, Gw: net.IPv4(198, 51, 100, 254)}); err != nil {
			t.Fatal(err)
		}
		if err := netnsutil.Do(l.r, func() error {
			return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
		}); err != nil {
			t.Fatal(err)
		}
		rules := filepath.Join(t.TempDir(), "nat.nft")
		if err := os.WriteFile(rules, []byte("table ip nat {\n  chain post {\n    type nat hook postrouting priority 100;\n    oifname \"vr2\" masquerade\n  }\n}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("nft", "-f", rules)
		if out, err := runIn(l.r, cmd); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
	}
	return l
}

// startCharon configures and starts charon in namespace s.
func (l *ssLab) startCharon() {
	t := l.t
	t.Helper()
	l.conf, l.run = t.TempDir(), t.TempDir()
	l.vici = filepath.Join(l.run, "charon.vici")
	for _, d := range []string{"private", "x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12"} {
		if err := os.MkdirAll(filepath.Join(l.conf, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l.write("strongswan.conf", fmt.Sprintf(`charon {
  load = random nonce openssl aes sha1 sha2 hmac gcm kdf gmp pem pkcs1 pkcs8 x509 pubkey revocation constraints kernel-libipsec kernel-netlink socket-default vici updown
  install_routes = yes
  routing_table = 220
  routing_table_prio = 220
  retransmit_timeout = 1
  retransmit_base = 1.4
  retransmit_tries = 3
  filelog {
    lab {
      path = %[1]s/charon.log
      time_format = %%T
      default = 1
      ike = 2
      cfg = 2
      enc = 1
      flush_line = yes
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
  plugins {
    vici {
      socket = unix://%[1]s/charon.vici
    }
    kernel-libipsec {
      allow_peer_ts = no
    }
  }
}
swanctl {
  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints
}
`, l.run))
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		"mount --bind "+l.run+" /run && exec "+charonPath)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(l.conf, "strongswan.conf"))
	out, err := os.Create(filepath.Join(l.run, "charon.stdout"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := netnsutil.Start(l.s, cmd); err != nil {
		t.Fatal(err)
	}
	l.charon = cmd
	t.Cleanup(func() {
		l.stopCharon()
		out.Close()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(l.run, "charon.log")); err == nil {
				t.Logf("charon.log:\n%s", b)
			}
		}
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(l.vici); err == nil {
			break
		}
		if i > 100 {
			b, _ := os.ReadFile(filepath.Join(l.run, "charon.stdout"))
			t.Fatalf("charon did not start: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *ssLab) stopCharon() {
	if l.charon == nil {
		return
	}
	c := l.charon
	l.charon = nil
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

func (l *ssLab) write(name, content string) {
	l.t.Helper()
	if err := os.WriteFile(filepath.Join(l.conf, name), []byte(content), 0o600); err != nil {
		l.t.Fatal(err)
	}
}

func (l *ssLab) swanctl(args ...string) string {
	l.t.Helper()
	cmd := exec.Command("swanctl", append(args, "--uri", "unix://"+l.vici)...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(l.conf, "strongswan.conf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("swanctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// ssChild is one CHILD_SA as strongSwan reports it.
type ssChild struct {
	state, spiIn, spiOut, encr, mode string
}

// ssSA is strongSwan's IKE SA: its state, its NAT detection (vici
// nat-local, nat-remote: detected; nat-fake: it forces encapsulation and
// detected no NAT) and its CHILD_SAs.
type ssSA struct {
	state                        string
	natLocal, natRemote, natFake bool
	children                     []ssChild
}

// childSAs lists strongSwan's installed CHILD_SAs through vici.
func (l *ssLab) childSAs() (ike string, children []ssChild) {
	sa := l.ikeSA()
	return sa.state, sa.children
}

// ikeSA returns strongSwan's (last listed) IKE SA through vici.
func (l *ssLab) ikeSA() ssSA {
	l.t.Helper()
	s, err := vici.NewSession(vici.WithSocketPath(l.vici))
	if err != nil {
		l.t.Fatal(err)
	}
	defer s.Close()
	msgs, err := s.StreamedCommandRequest("list-sas", "list-sa", nil)
	if err != nil {
		l.t.Fatal(err)
	}
	var out ssSA
	for _, m := range msgs {
		for _, k := range m.Keys() {
			sa, ok := m.Get(k).(*vici.Message)
			if !ok {
				continue
			}
			yes := func(k string) bool { v, _ := sa.Get(k).(string); return v == "yes" }
			out = ssSA{natLocal: yes("nat-local"), natRemote: yes("nat-remote"), natFake: yes("nat-fake")}
			out.state, _ = sa.Get("state").(string)
			cs, ok := sa.Get("child-sas").(*vici.Message)
			if !ok {
				continue
			}
			for _, ck := range cs.Keys() {
				c, ok := cs.Get(ck).(*vici.Message)
				if !ok {
					continue
				}
				str := func(k string) string { v, _ := c.Get(k).(string); return v }
				out.children = append(out.children, ssChild{state: str("state"), spiIn: str("spi-in"), spiOut: str("spi-out"),
					encr: str("encr-alg") + "-" + str("encr-keysize"), mode: str("mode")})
			}
		}
	}
	return out
}

// The LAN addresses pinged across the tunnel.
var (
	hvLAN = netip.MustParseAddr("192.168.1.1")
	ssLAN = netip.MustParseAddr("192.168.2.1")
)

// ping pings count times both ways between the LANs (from ns s to havpn's
// LAN and from ns h to strongSwan's) and fails unless every echo request
// is answered.
func (l *ssLab) ping(count int) error {
	var errs []error
	for _, ns := range []string{l.s, l.h} {
		if _, err := l.pingFrom(ns, count, "0.2"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// pingInterval pings count times every interval seconds from ns s to
// havpn's LAN and, at the same time, from ns h to strongSwan's; it fails
// on any loss.
func (l *ssLab) pingInterval(count int, interval string) error {
	errc := make(chan error, 2)
	for _, ns := range []string{l.s, l.h} {
		go func() {
			_, err := l.pingFrom(ns, count, interval)
			errc <- err
		}()
	}
	return errors.Join(<-errc, <-errc)
}

// pingFrom pings the other LAN from ns (l.s or l.h) count times every
// interval seconds and returns the number of replies; it fails on any
// loss.
func (l *ssLab) pingFrom(ns string, count int, interval string) (int, error) {
	src, dst := ssLAN, hvLAN
	if ns == l.h {
		src, dst = hvLAN, ssLAN
	}
	cmd := exec.Command("ping", "-n", "-c", fmt.Sprint(count), "-i", interval, "-W", "2", "-I", src.String(), dst.String())
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := netnsutil.Start(ns, cmd); err != nil {
		return 0, err
	}
	err := cmd.Wait()
	var sent, recv int
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "packets transmitted") {
			fmt.Sscanf(line, "%d packets transmitted, %d received", &sent, &recv)
		}
	}
	if err != nil || sent != count || recv != count {
		return recv, fmt.Errorf("ping %s -> %s: %d sent, %d received (%v): %s", src, dst, sent, recv, err, out.String())
	}
	return recv, nil
}

// dataplaneInstaller is the IKE daemon's SAInstaller over the real
// dataplane, as internal/daemon's ikeInstaller adapts it: the negotiated
// keys become tunnel.SAs of the tunnel named by the child.
type dataplaneInstaller struct{ m *tunnel.Manager }

func tunnelSA(k ChildKeys) (tunnel.SA, error) {
	c, err := esp.ParseCipher(k.Cipher)
	if err != nil {
		return tunnel.SA{}, err
	}
	return tunnel.SA{State: esp.State{Cipher: c, SPI: k.SPI, Key: k.Key, ESN: k.ESN}}, nil
}

func (d dataplaneInstaller) InstallChild(c Child) error {
	in, err := tunnelSA(c.In)
	if err != nil {
		return err
	}
	out, err := tunnelSA(c.Out)
	if err != nil {
		return err
	}
	out.Local, out.Remote = c.Local, c.Remote
	return d.m.InstallChild(c.Tunnel, in, out, c.Activate)
}

func (d dataplaneInstaller) ActivateOutbound(name string, spi uint32) error {
	return d.m.ActivateOutbound(name, spi)
}

func (d dataplaneInstaller) RemoveChild(name string, in, out uint32) error {
	return d.m.RemoveChild(name, in, out)
}

// teeInstaller installs in the dataplane first and records what it
// accepted.
type teeInstaller struct {
	dp  SAInstaller
	rec *syncInstaller
}

func (t teeInstaller) InstallChild(c Child) error {
	if err := t.dp.InstallChild(c); err != nil {
		return err
	}
	return t.rec.InstallChild(c)
}

func (t teeInstaller) ActivateOutbound(name string, spi uint32) error {
	return errors.Join(t.dp.ActivateOutbound(name, spi), t.rec.ActivateOutbound(name, spi))
}

func (t teeInstaller) RemoveChild(name string, in, out uint32) error {
	return errors.Join(t.dp.RemoveChild(name, in, out), t.rec.RemoveChild(name, in, out))
}

// hvTunnel is the name of havpn's tunnel (and TUN) to strongSwan.
const hvTunnel = "ss0"

// hvDataplane is havpn's dataplane in ns h.
type hvDataplane struct {
	m          *tunnel.Manager
	keepalives atomic.Int32 // NAT-T keepalives the IKE daemon sent through the dataplane
}

// sendNAT is the IKE daemon's SendNAT: the Manager's SendUDP, counting
// NAT-T keepalives.
func (dp *hvDataplane) sendNAT(payload []byte, local, remote netip.AddrPort) error {
	if len(payload) == 1 && payload[0] == 0xff {
		dp.keepalives.Add(1)
	}
	return dp.m.SendUDP(payload, local, remote)
}

// status returns the tunnel's status.
func (dp *hvDataplane) status() tunnel.Status { return dp.m.Tunnel(hvTunnel).Status() }

// sas returns the tunnel's inbound SPIs and its sending outbound SPI (0
// when none).
func (dp *hvDataplane) sas() (in []uint32, active uint32) {
	for _, s := range dp.m.ExportSAs() {
		switch {
		case s.Inbound && s.Expires.IsZero():
			in = append(in, s.SA.SPI)
		case !s.Inbound && s.Active:
			active = s.SA.SPI
		}
	}
	return in, active
}

type interopCase struct {
	name      string
	auth      string // psk | ed25519 | ecdsa | rsa
	initiator bool   // havpn initiates
	ssIKE     string // strongSwan proposals
	ssESP     string
	pkcs1     bool
	ssExtra   string        // more connection settings for strongSwan
	ssChild   string        // more CHILD_SA settings for strongSwan
	extra     func(*Config) // changes to havpn's config
}

// havpnConfig writes havpn's credentials and returns the daemon
// configuration of havpn's side: one mode ip tunnel to strongSwan with
// subnet traffic selectors, keyed by IKE.
func (l *ssLab) havpnConfig(tc interopCase, psk string) *config.Config {
	t := l.t
	dir := t.TempDir()
	tcfg := config.Tunnel{
		Name: hvTunnel, Local: hvAddr, Remote: l.ssAddr, Port: 4500, Mode: config.ModeIP,
		Address: netip.MustParsePrefix("172.16.9.1/30"), PeerAddress: netip.MustParseAddr("172.16.9.2"),
		WANMTU: 1500, Cipher: config.CipherAESGCM128, ReplayWindow: 1024,
		Keepalive: config.TunnelKeepalive{Interval: config.Duration(time.Second), Dead: config.Duration(5 * time.Second)},
		Keying:    config.KeyingIKE,
		IKE: &config.TunnelIKE{RemoteID: "@b.example.net", Initiator: tc.initiator,
			LocalTS: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}, RemoteTS: []netip.Prefix{netip.MustParsePrefix("192.168.2.0/24")}},
	}
	tcfg.MTU = tcfg.WANMTU - tcfg.Overhead()
	ic := &config.IKE{Port: 500, NATPort: 4500, LocalID: "@a.example.net", Fragmentation: true}
	if tc.auth == "psk" {
		ic.Auth, ic.PSKFile = config.AuthPSK, filepath.Join(dir, "psk")
		if err := os.WriteFile(ic.PSKFile, []byte(psk+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return &config.Config{IKE: ic, Tunnels: []config.Tunnel{tcfg}}
	}
	kt, err := pki.ParseKeyType(tc.auth)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, err := pki.NewCA("havpn interop", "havpn interop CA", kt, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca1, k1, err := ca.Issue(pki.Request{CommonName: "gw-a", DNSNames: []string{"a.example.net"}, IPs: []netip.Addr{hvAddr}, KeyType: kt}, now)
	if err != nil {
		t.Fatal(err)
	}
	cb, kb, err := ca.Issue(pki.Request{CommonName: "gw-b", DNSNames: []string{"b.example.net"}, IPs: []netip.Addr{l.ssAddr}, KeyType: kt}, now)
	if err != nil {
		t.Fatal(err)
	}
	ic.Auth, ic.CertFile, ic.KeyFile, ic.CAFile = config.AuthCert, filepath.Join(dir, "a.pem"), filepath.Join(dir, "a.key"), filepath.Join(dir, "ca.pem")
	for _, err := range []error{
		pki.WriteCert(ic.CertFile, ca1), pki.WriteKey(ic.KeyFile, k1), pki.WriteCert(ic.CAFile, ca.Cert),
		// strongSwan's side.
		pki.WriteCert(filepath.Join(l.conf, "ca.pem"), ca.Cert), pki.WriteCert(filepath.Join(l.conf, "b.pem"), cb),
		pki.WriteKey(filepath.Join(l.conf, "private", "b.pem"), kb),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return &config.Config{IKE: ic, Tunnels: []config.Tunnel{tcfg}}
}

// setup configures both sides and returns the havpn daemon (running), the
// record of what it installed, and havpn's dataplane (running).
func (l *ssLab) setup(tc interopCase) (*Daemon, *syncInstaller, *hvDataplane) {
	t := l.t
	const psk = "havpn-interop-psk-0123456789"
	hc := l.havpnConfig(tc, psk)
	cfg, err := FromConfig(hc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DPD = 3 * time.Second
	cfg.RetransmitBase, cfg.RetransmitTimeout = 300*time.Millisecond, 5*time.Second
	cfg.RSAPKCS1 = tc.pkcs1
	var local, remote, secrets string
	if tc.auth == "psk" {
		local = "auth = psk\n      id = b.example.net"
		remote = "auth = psk\n      id = a.example.net"
		secrets = fmt.Sprintf("secrets {\n  ike-1 {\n    id-1 = a.example.net\n    id-2 = b.example.net\n    secret = %q\n  }\n}\n", psk)
	} else {
		local = "auth = pubkey\n      id = b.example.net\n      certs = " + filepath.Join(l.conf, "b.pem")
		remote = "auth = pubkey\n      id = a.example.net\n      cacerts = " + filepath.Join(l.conf, "ca.pem")
	}
	if tc.extra != nil {
		tc.extra(&cfg)
	}
	ssIKE, ssESP := tc.ssIKE, tc.ssESP
	if ssIKE == "" {
		ssIKE = "aes128gcm16-prfsha256-x25519"
	}
	if ssESP == "" {
		ssESP = "aes128gcm16-x25519"
	}
	remoteAddrs := hvAddr.String()
	if l.r != "" {
		remoteAddrs = "%any" // behind the NAT
	}
	l.write("swanctl.conf", fmt.Sprintf(`connections {
  havpn {
    version = 2
    local_addrs = %s
    remote_addrs = %s
    encap = yes
    proposals = %s
    dpd_delay = 2s
    send_cert = always
    %s
    local {
      %s
    }
    remote {
      %s
    }
    children {
      lan {
        mode = tunnel
        local_ts = 192.168.2.0/24
        remote_ts = 192.168.1.0/24
        esp_proposals = %s
        start_action = none
        dpd_action = clear
        %s
      }
    }
  }
}
%s`, l.ssAddr, remoteAddrs, ssIKE, tc.ssExtra, local, remote, ssESP, tc.ssChild, secrets))
	l.swanctl("--load-all", "--file", filepath.Join(l.conf, "swanctl.conf"))

	_, bench := t.(*testing.B)
	log := testLogger(t, "havpn")
	if bench {
		log = nil // measure the protocol, not the test log
	}
	// The dataplane first (it owns UDP 4500), then the IKE daemon on top,
	// as internal/daemon starts them.
	dp := &hvDataplane{}
	dp.m, err = tunnel.New(hc.Tunnels, tunnel.Options{NetNS: l.h, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	hh, err := netnsutil.Handle(l.h)
	if err != nil {
		t.Fatal(err)
	}
	defer hh.Close()
	link, err := hh.LinkByName(hvTunnel)
	if err != nil {
		t.Fatal(err)
	}
	// What internal/daemon does with tunnels[].routes.
	if err := hh.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(192, 168, 2, 0), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	mctx, mcancel := context.WithCancel(context.Background())
	merr := make(chan error, 1)
	go func() { merr <- dp.m.Run(mctx) }()
	t.Cleanup(func() {
		mcancel()
		if err := <-merr; err != nil {
			t.Error(err)
		}
	})
	ins := &syncInstaller{rec: newRecInstaller()}
	d, err := NewDaemon(cfg, DaemonOptions{
		Installer: teeInstaller{dataplaneInstaller{dp.m}, ins}, Log: log,
		ListenAddrs: []netip.Addr{hvAddr}, SendNAT: dp.sendNAT,
	})
	if err != nil {
		t.Fatal(err)
	}
	dp.m.SetIKE(d.HandlePacket)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- netnsutil.Do(l.h, func() error { return d.Run(ctx) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
		dp.m.SetIKE(nil)
	})
	return d, ins, dp
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkTunnel verifies that both sides agree on the child SA, that havpn's
// dataplane holds it, that traffic passes both ways through the dataplane,
// and that both sides' NAT detection matches the topology.
func (l *ssLab) checkTunnel(d *Daemon, ins *syncInstaller, dp *hvDataplane) {
	t := l.t
	t.Helper()
	waitFor(t, 15*time.Second, "havpn child SA", func() bool { return len(ins.snapshot()) == 1 })
	var ss ssSA
	waitFor(t, 5*time.Second, "strongSwan CHILD_SA", func() bool {
		ss = l.ikeSA()
		return ss.state == "ESTABLISHED" && len(ss.children) == 1 && ss.children[0].state == "INSTALLED"
	})
	var ours Child
	for _, c := range ins.snapshot() {
		ours = c
	}
	cs := ss.children
	if cs[0].spiIn != fmt.Sprintf("%08x", ours.Out.SPI) || cs[0].spiOut != fmt.Sprintf("%08x", ours.In.SPI) {
		t.Fatalf("strongSwan child %+v, havpn child in=%08x out=%08x", cs[0], ours.In.SPI, ours.Out.SPI)
	}
	if in, active := dp.sas(); !slices.Contains(in, ours.In.SPI) || active != ours.Out.SPI {
		t.Fatalf("dataplane SAs: inbound %x, sending %x; child in=%08x out=%08x", in, active, ours.In.SPI, ours.Out.SPI)
	}
	before := dp.status()
	if err := l.ping(3); err != nil {
		t.Fatalf("ping through the tunnel: %v\ndataplane: %+v", err, dp.status())
	}
	// Three echo requests and three replies each way went through the
	// dataplane (other traffic, like IPv6 router solicitations, may add).
	// The dataplane's counters are summed from its workers, so the last
	// packets may show a moment after the ping has its reply.
	var rx, tx uint64
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st := dp.status()
		if rx, tx = st.RxPackets-before.RxPackets, st.TxPackets-before.TxPackets; rx >= 6 && tx >= 6 {
			break
		}
	}
	if rx < 6 || tx < 6 {
		t.Fatalf("dataplane moved %d packets in, %d out, want >= 6 each", rx, tx)
	}
	checkDrops(t, dp.status())
	sas, err := d.SAs(context.Background())
	if err != nil || len(sas) != 1 || len(sas[0].Children) != 1 {
		t.Fatalf("havpn SAs %+v %v", sas, err)
	}
	if c := sas[0].Children[0]; c.Mode != "tunnel" || c.LocalTS[0] != "192.168.1.0-192.168.1.255" || c.RemoteTS[0] != "192.168.2.0-192.168.2.255" {
		t.Fatalf("child %+v", c)
	}
	l.checkNAT(sas[0], ss)
	t.Logf("established: %s / %s, child %s", sas[0].Proposal, cs[0].encr, sas[0].Children[0].Proposal)
	if b, err := os.ReadFile(filepath.Join(l.run, "charon.log")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "authentication of") || strings.Contains(line, "fragment") {
				t.Logf("charon: %s", line)
			}
		}
	}
}

// checkDrops fails on inbound packets the dataplane refused for their
// keys or contents, and on outbound packets it could not seal or send.
func checkDrops(t testing.TB, st tunnel.Status) {
	t.Helper()
	for _, r := range []string{"short", "replay", "auth", "padding", "next_header", "inner", "tun_write"} {
		if n := st.DropsIn[r]; n != 0 {
			t.Errorf("dataplane dropped %d inbound packets: %s", n, r)
		}
	}
	for _, r := range []string{"seal", "udp_write"} {
		if n := st.DropsOut[r]; n != 0 {
			t.Errorf("dataplane dropped %d outbound packets: %s", n, r)
		}
	}
}

// checkNAT compares both sides' NAT detection (RFC 7296 §2.23) with the
// topology: havpn is behind the masquerade when l.r is set, strongSwan
// never is. strongSwan always sends a fake source hash (encap=yes;
// kernel-libipsec needs UDP encapsulation anyway), so havpn sees a remote
// NAT, and as responder has no need to fake. A fake of havpn's
// (Peer.ForceEncap) shows at strongSwan as remote NAT. strongSwan records
// its own fake (nat-fake) only when it detected no NAT at all: on the
// direct path without havpn's fake, that says that havpn's true hashes
// match strongSwan's own computation.
func (l *ssLab) checkNAT(hv SAInfo, ss ssSA) {
	t := l.t
	t.Helper()
	natted := l.r != ""
	for _, c := range []struct {
		what      string
		got, want bool
	}{
		{"havpn nat_local", hv.NATLocal, natted},
		{"havpn nat_remote (strongSwan fakes)", hv.NATRemote, true},
		{"havpn nat_fake as responder", hv.NATFake && !hv.Initiator, false},
		{"strongSwan nat-local", ss.natLocal, false},
		{"strongSwan nat-remote (havpn behind the NAT or faking)", ss.natRemote, natted || hv.NATFake},
		{"strongSwan nat-fake (no NAT detected by strongSwan)", ss.natFake, !natted && !hv.NATFake},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	b, _ := json.Marshal(hv)
	t.Logf("havpn SA: %s; strongSwan nat-local=%v nat-remote=%v nat-fake=%v", b, ss.natLocal, ss.natRemote, ss.natFake)
}

func TestInteropStrongSwan(t *testing.T) {
	requireStrongSwan(t)
	noForce := func(c *Config) { c.Peers[0].ForceEncap = false }
	cases := []interopCase{
		{name: "psk havpn initiator", auth: "psk", initiator: true},
		{name: "psk strongswan initiator", auth: "psk", initiator: false, ssIKE: "aes256gcm16-prfsha384-ecp384", ssESP: "aes256gcm16-ecp384"},
		// strongSwan encapsulates by itself: havpn's true hashes show
		// strongSwan a direct path.
		{name: "psk cbc chacha no forced encapsulation", auth: "psk", initiator: true, ssIKE: "aes256-sha256-prfsha256-ecp256", ssESP: "chacha20poly1305-ecp256", extra: noForce},
		{name: "ed25519 havpn initiator", auth: "ed25519", initiator: true},
		{name: "ed25519 strongswan initiator", auth: "ed25519", initiator: false},
		{name: "ecdsa havpn initiator", auth: "ecdsa", initiator: true},
		{name: "ecdsa strongswan initiator", auth: "ecdsa", initiator: false},
		{name: "rsa pss havpn initiator", auth: "rsa", initiator: true},
		{name: "rsa pkcs1 strongswan initiator", auth: "rsa", initiator: false, pkcs1: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newSSLab(t)
			d, ins, dp := l.setup(tc)
			if !tc.initiator {
				l.swanctl("--initiate", "--child", "lan", "--timeout", "10")
			}
			l.checkTunnel(d, ins, dp)
		})
	}
}

// TestInteropRekey rekeys child and IKE SAs while probes run through the
// tunnel both ways, once driven by strongSwan and once by havpn; no probe
// may be lost.
func TestInteropRekey(t *testing.T) {
	requireStrongSwan(t)
	cases := []interopCase{
		{name: "strongswan rekeys", auth: "ed25519", initiator: true,
			ssExtra: "rekey_time = 5s\n    over_time = 5s\n    rand_time = 0s",
			ssChild: "rekey_time = 3s\n        life_time = 6s\n        rand_time = 0s"},
		{name: "havpn rekeys", auth: "ed25519", initiator: true, extra: func(c *Config) {
			c.ChildLifetime, c.IKELifetime, c.RekeyMargin = 8*time.Second, 11*time.Second, 4*time.Second
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := newSSLab(t)
			d, ins, dp := l.setup(tc)
			l.checkTunnel(d, ins, dp)
			before, err := d.SAs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := l.pingInterval(120, "0.1"); err != nil {
				t.Fatalf("probe lost packets across rekeys: %v\ndataplane: %+v", err, dp.status())
			}
			after, err := d.SAs(context.Background())
			if err != nil || len(after) != 1 || len(after[0].Children) != 1 {
				t.Fatalf("after rekeys: %+v %v", after, err)
			}
			if after[0].SPIi == before[0].SPIi {
				t.Errorf("IKE SA not rekeyed (SPI %s)", after[0].SPIi)
			}
			if after[0].Children[0].InSPI == before[0].Children[0].InSPI {
				t.Errorf("child SA not rekeyed")
			}
			ike, cs := l.childSAs()
			var installed []ssChild
			for _, c := range cs {
				if c.state == "INSTALLED" {
					installed = append(installed, c)
				}
			}
			if ike != "ESTABLISHED" || len(installed) != 1 || installed[0].spiOut != after[0].Children[0].InSPI {
				t.Fatalf("strongSwan after rekeys: %s %+v, havpn %+v", ike, cs, after[0].Children)
			}
			// The dataplane sends with the newest child.
			if _, active := dp.sas(); fmt.Sprintf("%08x", active) != after[0].Children[0].OutSPI {
				t.Fatalf("dataplane sends with %08x, child out %s", active, after[0].Children[0].OutSPI)
			}
			st := dp.status()
			checkDrops(t, st)
			t.Logf("IKE %s -> %s, child %s -> %s, dataplane in %d out %d packets, drops in %v",
				before[0].SPIi, after[0].SPIi, before[0].Children[0].InSPI, after[0].Children[0].InSPI, st.RxPackets, st.TxPackets, st.DropsIn)
		})
	}
}

// TestInteropDPD kills charon and expects havpn to notice within the DPD
// interval plus the DPD answer timeout, and the dataplane to stop sending.
func TestInteropDPD(t *testing.T) {
	requireStrongSwan(t)
	l := newSSLab(t)
	d, ins, dp := l.setup(interopCase{auth: "psk", initiator: true, extra: func(c *Config) { c.DPD = 2 * time.Second }})
	l.checkTunnel(d, ins, dp)
	_ = l.charon.Process.Kill()
	killed := time.Now()
	waitFor(t, 10*time.Second, "DPD to remove the child SA", func() bool { return len(ins.snapshot()) == 0 })
	if took := time.Since(killed); took > 2*2*time.Second+time.Second {
		t.Fatalf("dead peer noticed after %s, want <= 2*DPD", took)
	} else {
		t.Logf("dead peer noticed after %s (DPD 2s)", took.Round(10*time.Millisecond))
	}
	if _, active := dp.sas(); active != 0 {
		t.Fatalf("dataplane still sends with %08x", active)
	}
}

// TestHavpnPairNetns runs two havpn daemons on the real IKE ports in two
// namespaces with pki-made certificates and GRE (transport) child SAs,
// directly and with the initiator behind an nftables masquerade.
func TestHavpnPairNetns(t *testing.T) {
	for _, nat := range []bool{false, true} {
		t.Run(fmt.Sprintf("nat=%v", nat), func(t *testing.T) {
			l := newSSLabTopo(t, nat)
			p := newTestPKI(t, pki.ECDSA)
			ca := p.certConfig(t, pki.ECDSA, "gw-a", "a.example.net", hvAddr, "@a.example.net")
			cb := p.certConfig(t, pki.ECDSA, "gw-b", "b.example.net", l.ssAddr, "@b.example.net")
			// The test PKI is dated at the fake clock of the in-memory tests.
			shift := time.Unix(1_800_000_000, 0).Sub(time.Now())
			ca.Verifier, cb.Verifier = timeShift{NewX509Verifier(ca.CAs), shift}, timeShift{NewX509Verifier(cb.CAs), shift}
			ca.Peers = []Peer{{Name: "gre0", Local: hvAddr, Remote: l.ssAddr, RemoteID: mustID("@b.example.net"), Initiator: true}}
			// B does not know A's address behind the NAT; it matches by identity.
			cb.Peers = []Peer{{Name: "gre0", Local: l.ssAddr, Remote: hvAddr, RemoteID: mustID("@a.example.net")}}
			ia, ib := &syncInstaller{rec: newRecInstaller()}, &syncInstaller{rec: newRecInstaller()}
			run := func(ns string, c Config, ins *syncInstaller, name string) *Daemon {
				d, err := NewDaemon(c, DaemonOptions{Installer: ins, Log: testLogger(t, name)})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, 1)
				go func() { errc <- netnsutil.Do(ns, func() error { return d.Run(ctx) }) }()
				t.Cleanup(func() {
					cancel()
					if err := <-errc; err != nil {
						t.Error(err)
					}
				})
				return d
			}
			db := run(l.s, cb, ib, "b")
			da := run(l.h, ca, ia, "a")
			waitFor(t, 10*time.Second, "child SAs on both sides", func() bool { return len(ia.snapshot()) == 1 && len(ib.snapshot()) == 1 })
			checkChildren(t, side{ins: ia.rec}, side{ins: ib.rec})
			sas, err := da.SAs(context.Background())
			if err != nil || len(sas) != 1 {
				t.Fatal(sas, err)
			}
			sbs, err := db.SAs(context.Background())
			if err != nil || len(sbs) != 1 {
				t.Fatal(sbs, err)
			}
			// NAT detection (RFC 7296 §2.23): nothing on the direct path,
			// A behind the masquerade on the other; no fakes between havpns.
			if a, b := sas[0], sbs[0]; a.NATLocal != nat || a.NATRemote || a.NATFake || b.NATLocal || b.NATRemote != nat || b.NATFake {
				t.Errorf("NAT state: A local=%v remote=%v fake=%v, B local=%v remote=%v fake=%v, want A local and B remote = %v, rest false",
					a.NATLocal, a.NATRemote, a.NATFake, b.NATLocal, b.NATRemote, b.NATFake, nat)
			}
			if sas[0].Children[0].Mode != "gre" {
				t.Fatalf("SA %+v", sas[0])
			}
			for _, c := range ib.snapshot() {
				want := hvAddr
				if nat {
					want = netip.MustParseAddr("203.0.113.254") // the NAT's address
				}
				if c.Remote.Addr() != want || c.Remote.Port() == 500 {
					t.Fatalf("responder's child endpoint %s", c.Remote)
				}
			}
		})
	}
}

// TestInteropNAT puts havpn behind an nftables masquerade: NAT detection,
// IKE on 4500, ESP in UDP through the NAT mapping (both ways through the
// dataplane), keepalives. havpn initiates: strongSwan cannot reach an
// address behind a masquerade.
func TestInteropNAT(t *testing.T) {
	requireStrongSwan(t)
	l := newSSLabTopo(t, true)
	l.startCharon()
	d, ins, dp := l.setup(interopCase{auth: "ecdsa", initiator: true, extra: func(c *Config) { c.NATKeepalive = 500 * time.Millisecond }})
	l.checkTunnel(d, ins, dp) // checkNAT: havpn nat_local, strongSwan nat-remote
	for _, c := range ins.snapshot() {
		if c.Remote != netip.AddrPortFrom(l.ssAddr, 4500) {
			t.Errorf("child remote endpoint %s", c.Remote)
		}
	}
	if r := dp.status().Remote; r != netip.AddrPortFrom(l.ssAddr, 4500) {
		t.Errorf("dataplane sends to %s", r)
	}
	ka := dp.keepalives.Load()
	time.Sleep(1200 * time.Millisecond)
	if n := dp.keepalives.Load() - ka; n < 2 {
		t.Errorf("%d NAT-T keepalives through the dataplane in 1.2s, want >= 2", n)
	}
	if b, err := os.ReadFile(filepath.Join(l.run, "charon.log")); err == nil && !strings.Contains(string(b), "remote host is behind NAT") {
		t.Errorf("strongSwan did not see the NAT")
	}
}

// BenchmarkInteropStrongSwanSetup measures IKE SA setups (with one child
// SA, PSK, X25519) between havpn (initiator) and charon, one after the
// other: each iteration is IKE_SA_INIT + IKE_AUTH, then the Delete. It
// reports setups/s and the CPU time per setup of each side.
func BenchmarkInteropStrongSwanSetup(b *testing.B) {
	l := newSSLab(b)
	tc := interopCase{auth: "psk", ssESP: "aes128gcm16", extra: func(c *Config) {
		c.ESPProposals = []Proposal{mustProposal("aes128gcm16", false)}
		c.Proposals = []Proposal{mustProposal("aes128gcm16-prfsha256-x25519", true)}
		c.DPD = 0
	}}
	d, ins, _ := l.setup(tc)
	ins.notify = make(chan struct{}, 1)
	ctx := context.Background()
	wait := func(n int) {
		deadline := time.After(10 * time.Second)
		for len(ins.snapshot()) != n {
			select {
			case <-ins.notify:
			case <-deadline:
				b.Fatalf("timed out waiting for %d child SAs", n)
			}
		}
	}
	cpu := func() (self, charon time.Duration) {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
			self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", l.charon.Process.Pid)); err == nil {
			f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
			var ut, stt int64
			fmt.Sscan(f[11], &ut)
			fmt.Sscan(f[12], &stt)
			charon = time.Duration(ut+stt) * 10 * time.Millisecond // USER_HZ 100
		}
		return self, charon
	}
	s0, c0 := cpu()
	for b.Loop() {
		if err := d.Initiate(ctx, hvTunnel); err != nil {
			b.Fatal(err)
		}
		wait(1)
		if err := d.Terminate(ctx, hvTunnel); err != nil {
			b.Fatal(err)
		}
		wait(0)
	}
	s1, c1 := cpu()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "setups/s")
	b.ReportMetric(float64((s1-s0).Microseconds())/float64(b.N), "havpn-cpu-us/setup")
	b.ReportMetric(float64((c1-c0).Microseconds())/float64(b.N), "charon-cpu-us/setup")
}
