package vip

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
)

// allNodes returns ff02::1, the IPv6 all-nodes multicast address, the
// destination of an unsolicited Neighbor Advertisement (RFC 4861 §7.2.6).
func allNodes() netip.Addr { return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x01}) }

// GARPPayload returns the ARP body (no Ethernet header) of a gratuitous ARP
// for ip from mac: an ARP Announcement (RFC 5227 §2.3), i.e. a request with
// sender and target protocol address both set to ip and a zero target
// hardware address, to be sent to the broadcast address.
func GARPPayload(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("building gratuitous arp for %s: not an ipv4 address", ip)
	}
	p, err := arp.NewPacket(arp.OperationRequest, mac, ip, make(net.HardwareAddr, len(mac)), ip)
	if err != nil {
		return nil, fmt.Errorf("building gratuitous arp for %s: %w", ip, err)
	}
	return p.MarshalBinary()
}

// UnsolicitedNA returns the unsolicited Neighbor Advertisement for ip from
// mac (RFC 4861 §7.2.6): Solicited clear, Override set, with the target
// link-layer address option. Router is clear: a VIP holder is announced as
// a host; its routing role is unchanged by the announcement.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr) (*ndp.NeighborAdvertisement, error) {
	if !ip.Is6() || ip.Is4In6() {
		return nil, fmt.Errorf("building neighbor advertisement for %s: not an ipv6 address", ip)
	}
	if len(mac) == 0 {
		return nil, fmt.Errorf("building neighbor advertisement for %s: no link-layer address", ip)
	}
	return &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: ip.WithZone(""),
		Options: []ndp.Option{&ndp.LinkLayerAddress{
			Direction: ndp.Target,
			Addr:      mac,
		}},
	}, nil
}
