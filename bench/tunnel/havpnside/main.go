// Command havpnside runs one side of a havpn tunnel between the lab's
// s1gw1 and s2gw1 for bench/tunnel/run.sh, until the daemon can run tunnels
// itself: a manual-key GRE-in-ESP tunnel on the gateways' own WAN
// addresses, and a route to the other site's LAN through it.
//
//	havpnside -prefix hb- -side 1 -keydir DIR [-cipher aes-gcm-128] [-cpuprofile F]
//
// It prints "ready" once the tunnel is up and runs until SIGINT/SIGTERM.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/havpn/havpn/internal/tunnel"
	"github.com/vishvananda/netlink"
)

func main() {
	prefix := flag.String("prefix", "havpn-", "lab namespace prefix")
	side := flag.Int("side", 1, "1 = s1gw1, 2 = s2gw1")
	keydir := flag.String("keydir", "", "directory for the two key files (made when missing)")
	cipher := flag.String("cipher", "aes-gcm-128", "ESP cipher")
	workers := flag.Int("workers", 0, "crypto workers (0 = GOMAXPROCS)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if err := run(*prefix, *side, *keydir, config.Cipher(*cipher), *workers, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "havpnside:", err)
		os.Exit(1)
	}
}

func key(dir, name string, c config.Cipher, seed byte) (string, error) {
	p := filepath.Join(dir, name+"-"+string(c)+".key")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	k := make([]byte, config.CipherKeyLen(c))
	for i := range k {
		k[i] = seed + byte(i)*13
	}
	return p, os.WriteFile(p, []byte(hex.EncodeToString(k)+"\n"), 0o600)
}

func run(prefix string, side int, keydir string, c config.Cipher, workers int, cpuprofile string) error {
	if keydir == "" {
		return errors.New("-keydir is required")
	}
	if err := os.MkdirAll(keydir, 0o700); err != nil {
		return err
	}
	k12, err := key(keydir, "s1-to-s2", c, 3)
	if err != nil {
		return err
	}
	k21, err := key(keydir, "s2-to-s1", c, 77)
	if err != nil {
		return err
	}
	cfg := config.Tunnel{
		Name: "gre-site2", Local: netip.MustParseAddr("198.51.100.2"), Remote: netip.MustParseAddr("203.0.113.2"),
		Port: 4500, Mode: config.ModeGRE, Address: netip.MustParsePrefix("172.16.0.1/30"), PeerAddress: netip.MustParseAddr("172.16.0.2"),
		WANMTU: 1500, Cipher: c, ReplayWindow: 4096,
		Keepalive: config.TunnelKeepalive{Interval: config.Duration(100 * time.Millisecond), Dead: config.Duration(time.Second)},
		Keying:    config.KeyingManual,
		Manual:    &config.ManualKeys{Inbound: config.ManualSA{SPI: 0x2101, KeyFile: k21}, Outbound: config.ManualSA{SPI: 0x1201, KeyFile: k12}},
	}
	node, other := "s1gw1", netip.MustParsePrefix("192.168.2.0/24")
	if side == 2 {
		cfg.Name, cfg.Local, cfg.Remote = "gre-site1", cfg.Remote, cfg.Local
		cfg.Address, cfg.PeerAddress = netip.MustParsePrefix("172.16.0.2/30"), netip.MustParseAddr("172.16.0.1")
		cfg.Manual = &config.ManualKeys{Inbound: config.ManualSA{SPI: 0x1201, KeyFile: k12}, Outbound: config.ManualSA{SPI: 0x2101, KeyFile: k21}}
		node, other = "s2gw1", netip.MustParsePrefix("192.168.1.0/24")
	}
	cfg.MTU = cfg.WANMTU - cfg.Overhead()
	ns := prefix + node
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", node)
	m, err := tunnel.New([]config.Tunnel{cfg}, tunnel.Options{NetNS: ns, Log: log, Workers: workers})
	if err != nil {
		return err
	}
	h, err := netnsutil.Handle(ns)
	if err != nil {
		return errors.Join(err, m.Close())
	}
	link, err := h.LinkByName(cfg.Name)
	if err == nil {
		err = h.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: other.Addr().AsSlice(), Mask: net.CIDRMask(other.Bits(), 32)}})
	}
	h.Close()
	if err != nil {
		return errors.Join(fmt.Errorf("route %s via %s: %w", other, cfg.Name, err), m.Close())
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return errors.Join(err, m.Close())
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return errors.Join(err, m.Close())
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	go func() {
		for !m.Tunnel(cfg.Name).Up() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		fmt.Println("ready")
	}()
	err = <-done
	st := m.Status()[0]
	log.Info("stopped", "tx_packets", st.TxPackets, "rx_packets", st.RxPackets, "drops_in", st.DropsIn, "drops_out", st.DropsOut)
	return err
}
