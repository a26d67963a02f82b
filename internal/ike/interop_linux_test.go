//go:build linux

package ike

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strongswan/govici/vici"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/havpn/havpn/internal/ike/pki"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
)

// The interop tests run havpn's IKE against strongSwan's charon (with
// kernel-libipsec, recipe in shared/interop/DATAPLANE.md) in two network
// namespaces:
//
//	ns h (havpn, in this process)        ns s (charon)
//	va 198.51.100.1/24  <--- veth --->   vb 198.51.100.2/24
//	(LAN 192.168.1.0/24, emulated)       lan0 192.168.2.1/24
//
// The test plays the dataplane on havpn's side: it owns UDP 4500, hands
// IKE to the daemon, and answers ICMP echo requests that arrive in ESP
// with the negotiated keys. A ping from 192.168.2.1 to 192.168.1.1 inside
// ns s therefore only succeeds if both directions' keys match
// strongSwan's.

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

// childSAs lists strongSwan's installed CHILD_SAs through vici.
func (l *ssLab) childSAs() (ike string, children []ssChild) {
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
	for _, m := range msgs {
		for _, k := range m.Keys() {
			sa, ok := m.Get(k).(*vici.Message)
			if !ok {
				continue
			}
			ike, _ = sa.Get("state").(string)
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
				children = append(children, ssChild{state: str("state"), spiIn: str("spi-in"), spiOut: str("spi-out"),
					encr: str("encr-alg") + "-" + str("encr-keysize"), mode: str("mode")})
			}
		}
	}
	return ike, children
}

// ping runs ping inside ns s from the LAN address to the havpn LAN and
// fails unless every echo request is answered.
func (l *ssLab) ping(count int) error {
	_, err := l.pingInterval(count, "0.2")
	return err
}

// pingInterval pings count times every interval seconds and returns the
// number of replies; it fails on any loss.
func (l *ssLab) pingInterval(count int, interval string) (int, error) {
	cmd := exec.Command("ping", "-n", "-c", fmt.Sprint(count), "-i", interval, "-W", "2", "-I", "192.168.2.1", "192.168.1.1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := netnsutil.Start(l.s, cmd); err != nil {
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
		return recv, fmt.Errorf("ping: %d sent, %d received (%v): %s", sent, recv, err, out.String())
	}
	return recv, nil
}

// miniDataplane owns havpn's UDP 4500 in ns h: IKE goes to the daemon,
// ESP is decrypted with the installed child SAs and echo requests are
// answered.
type miniDataplane struct {
	t          testing.TB
	conn       *net.UDPConn
	ins        *syncInstaller
	mu         sync.Mutex
	out        map[uint32]*espSA // outbound SAs by SPI
	in         map[uint32]*espSA // inbound SAs by SPI
	espIn      int               // ESP packets decrypted
	espBad     int
	replies    int
	keepalives int // NAT-T keepalives sent
}

func newMiniDataplane(t testing.TB, ns string, ins *syncInstaller) *miniDataplane {
	m := &miniDataplane{t: t, ins: ins, out: map[uint32]*espSA{}, in: map[uint32]*espSA{}}
	err := netnsutil.Do(ns, func() error {
		var err error
		m.conn, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(hvAddr, 4500)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.conn.Close() })
	return m
}

func (m *miniDataplane) sendNAT(payload []byte, _, remote netip.AddrPort) error {
	if len(payload) == 1 && payload[0] == 0xff {
		m.mu.Lock()
		m.keepalives++
		m.mu.Unlock()
	}
	_, err := m.conn.WriteToUDPAddrPort(payload, remote)
	return err
}

func (m *miniDataplane) serve(d *Daemon) {
	buf := make([]byte, 65536)
	for {
		n, from, err := m.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		to := netip.AddrPortFrom(hvAddr, 4500)
		if n == 1 || (n >= 4 && binary.BigEndian.Uint32(b) == 0) {
			d.HandlePacket(b, from, to)
			continue
		}
		m.handleESP(b, from)
	}
}

// sa returns the cached ESP state of an installed SA by SPI (keys do not
// change, sequence numbers continue).
func (m *miniDataplane) sa(spi uint32, out bool) *espSA {
	cache := m.in
	if out {
		cache = m.out
	}
	if sa := cache[spi]; sa != nil {
		return sa
	}
	for _, c := range m.ins.snapshot() {
		k := c.In
		if out {
			k = c.Out
		}
		if k.SPI == spi {
			sa, err := newESPSA(k)
			if err != nil {
				m.t.Error(err)
				return nil
			}
			cache[spi] = sa
			return sa
		}
	}
	return nil
}

// handleESP decrypts with the inbound SA of the packet's SPI and answers
// echo requests on the tunnel's active outbound SA (make-before-break:
// old inbound SAs keep working until removed).
func (m *miniDataplane) handleESP(b []byte, from netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in := m.sa(binary.BigEndian.Uint32(b), false)
	if in == nil {
		m.espBad++
		return
	}
	p, next, err := in.open(b)
	if err != nil || next != 4 {
		m.espBad++
		return
	}
	m.espIn++
	r := echoReply(p)
	if r == nil {
		return
	}
	m.ins.mu.Lock()
	active := m.ins.rec.active
	m.ins.mu.Unlock()
	if out := m.sa(active, true); out != nil {
		if _, err := m.conn.WriteToUDPAddrPort(out.seal(r, 4), from); err == nil {
			m.replies++
		}
	}
}

func (m *miniDataplane) counts() (in, bad, replies int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.espIn, m.espBad, m.replies
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

// setup configures both sides and returns the havpn daemon (running) and
// its installer.
func (l *ssLab) setup(tc interopCase) (*Daemon, *syncInstaller, *miniDataplane) {
	t := l.t
	const psk = "havpn-interop-psk-0123456789"
	cfg := Config{
		LocalID: mustID("@a.example.net"),
		DPD:     3 * time.Second,
		Peers: []Peer{{Name: "ss", Local: hvAddr, Remote: l.ssAddr, RemoteID: mustID("@b.example.net"), Initiator: tc.initiator,
			Mode: ModeTunnel, LocalTS: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")},
			RemoteTS: []netip.Prefix{netip.MustParsePrefix("192.168.2.0/24")}}},
		RetransmitBase: 300 * time.Millisecond, RetransmitTimeout: 5 * time.Second,
		Fragmentation: true, RSAPKCS1: tc.pkcs1,
	}
	var local, remote, secrets string
	if tc.auth == "psk" {
		cfg.PSK = []byte(psk)
		local = "auth = psk\n      id = b.example.net"
		remote = "auth = psk\n      id = a.example.net"
		secrets = fmt.Sprintf("secrets {\n  ike-1 {\n    id-1 = a.example.net\n    id-2 = b.example.net\n    secret = %q\n  }\n}\n", psk)
	} else {
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
		cfg.Certificates, cfg.Key, cfg.CAs = [][]byte{ca1.Raw}, k1, []*x509.Certificate{ca.Cert}
		for name, c := range map[string]*x509.Certificate{"ca.pem": ca.Cert, "b.pem": cb} {
			if err := pki.WriteCert(filepath.Join(l.conf, name), c); err != nil {
				t.Fatal(err)
			}
		}
		if err := pki.WriteKey(filepath.Join(l.conf, "private", "b.pem"), kb); err != nil {
			t.Fatal(err)
		}
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
	ins := &syncInstaller{rec: newRecInstaller()}
	dp := newMiniDataplane(t, l.h, ins)
	opts := DaemonOptions{Installer: ins, SendNAT: dp.sendNAT, Log: testLogger(t, "havpn")}
	if _, bench := t.(*testing.B); bench {
		opts.Log = nil // measure the protocol, not the test log
	}
	d, err := NewDaemon(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- netnsutil.Do(l.h, func() error { return d.Run(ctx) }) }()
	go dp.serve(d)
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
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

// checkTunnel verifies that both sides agree on the child SA and that
// traffic passes both ways.
func (l *ssLab) checkTunnel(d *Daemon, ins *syncInstaller, dp *miniDataplane) {
	t := l.t
	waitFor(t, 15*time.Second, "havpn child SA", func() bool { return len(ins.snapshot()) == 1 })
	var ike string
	var cs []ssChild
	waitFor(t, 5*time.Second, "strongSwan CHILD_SA", func() bool {
		ike, cs = l.childSAs()
		return ike == "ESTABLISHED" && len(cs) == 1 && cs[0].state == "INSTALLED"
	})
	var ours Child
	for _, c := range ins.snapshot() {
		ours = c
	}
	if ike != "ESTABLISHED" || cs[0].spiIn != fmt.Sprintf("%08x", ours.Out.SPI) || cs[0].spiOut != fmt.Sprintf("%08x", ours.In.SPI) {
		t.Fatalf("strongSwan IKE %s child %+v, havpn child in=%08x out=%08x", ike, cs[0], ours.In.SPI, ours.Out.SPI)
	}
	if err := l.ping(3); err != nil {
		in, bad, rep := dp.counts()
		t.Fatalf("ping through the tunnel: %v (ESP decrypted %d, bad %d, replies %d)", err, in, bad, rep)
	}
	in, bad, rep := dp.counts()
	if in < 3 || rep < 3 || bad != 0 {
		t.Fatalf("ESP decrypted %d, bad %d, replies %d", in, bad, rep)
	}
	sas, err := d.SAs(context.Background())
	if err != nil || len(sas) != 1 {
		t.Fatalf("havpn SAs %+v %v", sas, err)
	}
	t.Logf("established: %s / %s, child %s", sas[0].Proposal, cs[0].encr, sas[0].Children[0].Proposal)
	if b, err := os.ReadFile(filepath.Join(l.run, "charon.log")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "authentication of") || strings.Contains(line, "fragment") {
				t.Logf("charon: %s", line)
			}
		}
	}
}

func TestInteropStrongSwan(t *testing.T) {
	requireStrongSwan(t)
	cases := []interopCase{
		{name: "psk havpn initiator", auth: "psk", initiator: true},
		{name: "psk strongswan initiator", auth: "psk", initiator: false, ssIKE: "aes256gcm16-prfsha384-ecp384", ssESP: "aes256gcm16-ecp384"},
		{name: "psk cbc chacha", auth: "psk", initiator: true, ssIKE: "aes256-sha256-prfsha256-ecp256", ssESP: "chacha20poly1305-ecp256"},
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

// TestInteropRekey rekeys child and IKE SAs while a probe runs through the
// tunnel, once driven by strongSwan and once by havpn; no probe may be lost.
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
			if _, err := l.pingInterval(120, "0.1"); err != nil {
				t.Fatalf("probe lost packets across rekeys: %v", err)
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
			in, bad, _ := dp.counts()
			t.Logf("IKE %s -> %s, child %s -> %s, ESP in %d, bad %d",
				before[0].SPIi, after[0].SPIi, before[0].Children[0].InSPI, after[0].Children[0].InSPI, in, bad)
		})
	}
}

// TestInteropDPD kills charon and expects havpn to notice within the DPD
// interval plus the DPD answer timeout.
func TestInteropDPD(t *testing.T) {
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
// IKE on 4500, ESP in UDP through the NAT mapping, keepalives.
func TestInteropNAT(t *testing.T) {
	requireStrongSwan(t)
	l := newSSLabTopo(t, true)
	l.startCharon()
	d, ins, dp := l.setup(interopCase{auth: "ecdsa", initiator: true, extra: func(c *Config) { c.NATKeepalive = 500 * time.Millisecond }})
	l.checkTunnel(d, ins, dp)
	sas, err := d.SAs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !sas[0].NATLocal {
		t.Errorf("havpn did not detect that it is behind a NAT: %+v", sas[0])
	}
	for _, c := range ins.snapshot() {
		if c.Remote != netip.AddrPortFrom(l.ssAddr, 4500) {
			t.Errorf("child remote endpoint %s", c.Remote)
		}
	}
	time.Sleep(1200 * time.Millisecond)
	dp.mu.Lock()
	ka := dp.keepalives
	dp.mu.Unlock()
	if ka < 2 {
		t.Errorf("%d NAT-T keepalives in about 1.5s, want >= 2", ka)
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
		if err := d.Initiate(ctx, "ss"); err != nil {
			b.Fatal(err)
		}
		wait(1)
		if err := d.Terminate(ctx, "ss"); err != nil {
			b.Fatal(err)
		}
		wait(0)
	}
	s1, c1 := cpu()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "setups/s")
	b.ReportMetric(float64((s1-s0).Microseconds())/float64(b.N), "havpn-cpu-us/setup")
	b.ReportMetric(float64((c1-c0).Microseconds())/float64(b.N), "charon-cpu-us/setup")
}
