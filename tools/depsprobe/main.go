// Command depsprobe imports every checked dependency so that go mod tidy
// keeps them until real code imports them; it does nothing.
package main

import (
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/goccy/go-yaml"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/gopacket/gopacket/layers"
	_ "github.com/mdlayher/arp"
	_ "github.com/mdlayher/ethernet"
	_ "github.com/mdlayher/ndp"
	_ "github.com/mdlayher/packet"
	_ "github.com/osrg/gobgp/v4/api"
	_ "github.com/osrg/gobgp/v4/pkg/apiutil"
	_ "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	_ "github.com/osrg/gobgp/v4/pkg/server"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/cobra/doc"
	_ "github.com/strongswan/govici/vici"
	_ "github.com/ti-mo/conntrack"
	_ "github.com/ti-mo/netfilter"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/crypto/hkdf"
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/net/ipv6"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/sys/unix"
	_ "golang.zx2c4.com/wireguard/tun"
	_ "gonum.org/v1/plot"
	_ "gonum.org/v1/plot/plotter"
	_ "gonum.org/v1/plot/vg"
)

func main() {}
