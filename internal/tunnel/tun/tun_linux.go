package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Create makes the TUN interface c describes in the network namespace of
// the calling thread (lock the thread and switch, as netnsutil.Do does, to
// create it elsewhere) and sets it up. It needs CAP_NET_ADMIN. On error
// nothing is left behind.
func Create(c Config) (Device, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	wd, err := wgtun.CreateTUN(c.Name, c.MTU)
	if err != nil {
		return nil, fmt.Errorf("creating tun %s: %w", c.Name, err)
	}
	d := &device{dev: wd, name: c.Name, drained: make(chan struct{})}
	go d.drainEvents()
	if err := configure(c); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return d, nil
}

func (c Config) check() error {
	switch {
	case c.Name == "" || len(c.Name) > 15:
		return fmt.Errorf("%w: name %q must have 1 to 15 bytes", ErrConfig, c.Name)
	case c.MTU < 576 || c.MTU > MaxPacket:
		return fmt.Errorf("%w: mtu %d out of range 576..%d", ErrConfig, c.MTU, MaxPacket)
	case c.Peer.IsValid() && !c.Address.IsValid():
		return fmt.Errorf("%w: peer %s without an address", ErrConfig, c.Peer)
	case c.Peer.IsValid() && c.Peer.Is4() != c.Address.Addr().Is4():
		return fmt.Errorf("%w: peer %s and address %s of different families", ErrConfig, c.Peer, c.Address)
	}
	return nil
}

func configure(c Config) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("opening netlink for %s: %w", c.Name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(c.Name)
	if err != nil {
		return fmt.Errorf("finding link %s: %w", c.Name, err)
	}
	if err := h.LinkSetMTU(link, c.MTU); err != nil {
		return fmt.Errorf("setting mtu %d on %s: %w", c.MTU, c.Name, err)
	}
	if err := h.LinkSetMulticastOn(link); err != nil {
		return fmt.Errorf("setting multicast on %s: %w", c.Name, err)
	}
	qlen := c.TxQueueLen
	if qlen == 0 {
		qlen = 1000
	}
	if err := h.LinkSetTxQLen(link, qlen); err != nil {
		return fmt.Errorf("setting txqueuelen %d on %s: %w", qlen, c.Name, err)
	}
	if c.Address.IsValid() {
		a := &netlink.Addr{IPNet: prefixNet(c.Address)}
		if c.Peer.IsValid() {
			// ip addr add LOCAL peer PEER/len: IFA_LOCAL is the own
			// address, IFA_ADDRESS the peer, with the prefix length of
			// the configured prefix (netlink takes it from Peer.Mask).
			a.IPNet = &net.IPNet{IP: c.Address.Addr().AsSlice(), Mask: net.CIDRMask(c.Address.Addr().BitLen(), c.Address.Addr().BitLen())}
			a.Peer = &net.IPNet{IP: c.Peer.AsSlice(), Mask: net.CIDRMask(c.Address.Bits(), c.Address.Addr().BitLen())}
		}
		if c.Address.Addr().Is6() {
			a.Flags = 0x02 // IFA_F_NODAD: usable at once
		}
		if err := h.AddrReplace(link, a); err != nil {
			return fmt.Errorf("adding address %s to %s: %w", c.Address, c.Name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up: %w", c.Name, err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// device adapts a wireguard tun.Device to Device.
type device struct {
	dev     wgtun.Device
	name    string
	drained chan struct{}
	closed  atomic.Bool
}

// drainEvents reads the wireguard device's event channel until Close
// closes it: its listeners block when nobody reads.
func (d *device) drainEvents() {
	defer close(d.drained)
	for range d.dev.Events() {
	}
}

func (d *device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.dev.Read(bufs, sizes, offset)
	if err != nil && (d.closed.Load() || errors.Is(err, os.ErrClosed)) {
		return n, os.ErrClosed
	}
	return n, err
}

func (d *device) Write(bufs [][]byte, offset int) (int, error) {
	n, err := d.dev.Write(bufs, offset)
	if err != nil && d.closed.Load() {
		return n, os.ErrClosed
	}
	return n, err
}

func (d *device) BatchSize() int { return d.dev.BatchSize() }
func (d *device) Name() string   { return d.name }

func (d *device) Close() error {
	d.closed.Store(true)
	err := d.dev.Close()
	<-d.drained
	return err
}
