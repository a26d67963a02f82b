package config

import (
	"reflect"
	"time"
)

// Defaults. This file is the only place where default values live; docs/CONFIG.md
// lists the same values. A default applies when the field is absent from the
// file. The "derived" defaults at the bottom (derive) apply when a field is
// absent or written as 0, because their value depends on other fields.
const (
	defaultLogLevel      = "info"
	defaultLogFormat     = "text"
	defaultControlSocket = "/run/havpn/havpn.sock"
	defaultMetricsListen = "127.0.0.1:9740"
	// metricsOff as metrics.listen disables the metrics listener (stored as "").
	metricsOff = "off"

	defaultClusterPort  = 694
	defaultKeepalive    = 50 * time.Millisecond
	defaultGARPCount    = 5
	defaultGARPInterval = 20 * time.Millisecond

	defaultTunnelPort        = 4500
	defaultTunnelMode        = ModeGRE
	defaultCipher            = CipherAESGCM256
	defaultReplayWindow      = 1024
	defaultTunnelKeepalive   = 100 * time.Millisecond
	defaultTunnelDead        = 500 * time.Millisecond
	defaultWANMTU            = 1500
	defaultTunnelIKEInitiate = true

	defaultIKEPort         = 500
	defaultIKENATPort      = 4500
	defaultIKELifetime     = 4 * time.Hour
	defaultChildLifetime   = time.Hour
	defaultRekeyMargin     = 5 * time.Minute
	defaultDPD             = 10 * time.Second
	defaultFragmentation   = true
	defaultBGPListenPort   = 179
	defaultBGPHoldTime     = 90 * time.Second
	defaultFIBTable        = 254 // main
	defaultFIBProtocol     = 186 // RTPROT_BGP
	defaultFIBMultipath    = true
	defaultStateSyncPort   = 695
	defaultSyncInterval    = time.Second
	defaultSeqMargin       = 1 << 24
	defaultResourceTimeout = 5 * time.Second
	defaultScriptTimeout   = 30 * time.Second
)

// newDefaulted returns a pointer to a new value of type t with the static
// defaults of t filled in; the decoder then overwrites what the file sets.
func newDefaulted(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	setDefaults(p.Interface())
	return p
}

// setDefaults fills the static defaults of the struct p points to (nested
// structs that are not pointers included). Types without defaults are left
// alone.
func setDefaults(p any) {
	switch x := p.(type) {
	case *Config:
		x.Log = Log{Level: defaultLogLevel, Format: defaultLogFormat}
		x.Control = Control{Socket: defaultControlSocket}
		x.Metrics = Metrics{Listen: defaultMetricsListen}
	case *Cluster:
		x.Port = defaultClusterPort
		x.Timers = Timers{Keepalive: Duration(defaultKeepalive)}
		x.GARP = GARP{Count: defaultGARPCount, Interval: Duration(defaultGARPInterval)}
	case *Tunnel:
		x.Port = defaultTunnelPort
		x.Mode = defaultTunnelMode
		x.Cipher = defaultCipher
		x.ReplayWindow = defaultReplayWindow
		x.Keepalive = TunnelKeepalive{Interval: Duration(defaultTunnelKeepalive), Dead: Duration(defaultTunnelDead)}
		x.WANMTU = defaultWANMTU
	case *TunnelIKE:
		x.Initiator = defaultTunnelIKEInitiate
	case *IKE:
		x.Port = defaultIKEPort
		x.NATPort = defaultIKENATPort
		x.IKELifetime = Duration(defaultIKELifetime)
		x.ChildLifetime = Duration(defaultChildLifetime)
		x.RekeyMargin = Duration(defaultRekeyMargin)
		x.DPD = Duration(defaultDPD)
		x.Fragmentation = defaultFragmentation
	case *BGP:
		x.ListenPort = defaultBGPListenPort
		x.FIB = FIB{Table: defaultFIBTable, Protocol: defaultFIBProtocol, Multipath: defaultFIBMultipath}
	case *Neighbor:
		x.HoldTime = Duration(defaultBGPHoldTime)
	case *StateSync:
		x.Enabled = true
		x.Port = defaultStateSyncPort
		x.Interval = Duration(defaultSyncInterval)
		x.SeqMargin = defaultSeqMargin
	}
}

// derive fills the defaults that depend on other fields. It runs after
// decoding and before validation, and is safe on a partly invalid config.
//
//   - metrics.listen "off" becomes "" (disabled).
//   - cluster.timers: deadtime 3*keepalive, warntime min(2*keepalive,
//     deadtime), initdead max(1s, 2*deadtime); with the default keepalive
//     that is 100ms, 150ms and 1s.
//   - resources[].timeout: 5s, 30s for scripts.
//   - tunnels[].mtu: wan_mtu minus the encapsulation overhead (Overhead).
//   - tunnels[].ike: present with initiator true for keying ike;
//     remote_id defaults to the remote address.
//   - bgp.neighbors[].keepalive: hold_time/3.
//   - bgp.prefix_lists[].rules[]: ge defaults to the prefix length, le to ge.
func derive(c *Config) {
	if c.Metrics.Listen == metricsOff {
		c.Metrics.Listen = ""
	}
	if cl := c.Cluster; cl != nil {
		t := &cl.Timers
		if t.Deadtime == 0 {
			t.Deadtime = 3 * t.Keepalive
		}
		if t.Warntime == 0 {
			t.Warntime = min(2*t.Keepalive, t.Deadtime)
		}
		if t.Initdead == 0 {
			t.Initdead = max(Duration(time.Second), 2*t.Deadtime)
		}
	}
	for i := range c.Resources {
		r := &c.Resources[i]
		if r.Timeout == 0 {
			r.Timeout = Duration(defaultResourceTimeout)
			if r.Type == ResourceScript {
				r.Timeout = Duration(defaultScriptTimeout)
			}
		}
	}
	for i := range c.Tunnels {
		t := &c.Tunnels[i]
		if t.MTU == 0 && t.WANMTU > t.Overhead() {
			t.MTU = t.WANMTU - t.Overhead()
		}
		if t.Keying == KeyingIKE && t.IKE == nil {
			t.IKE = newDefaulted(reflect.TypeFor[TunnelIKE]()).Interface().(*TunnelIKE)
		}
		if t.IKE != nil && t.IKE.RemoteID == "" && t.Remote.IsValid() {
			t.IKE.RemoteID = t.Remote.String()
		}
	}
	if b := c.BGP; b != nil {
		for i := range b.Neighbors {
			n := &b.Neighbors[i]
			if n.Keepalive == 0 {
				n.Keepalive = n.HoldTime / 3
			}
		}
		for i := range b.PrefixLists {
			for j := range b.PrefixLists[i].Rules {
				r := &b.PrefixLists[i].Rules[j]
				if !r.Prefix.IsValid() {
					continue
				}
				if r.GE == 0 {
					r.GE = r.Prefix.Bits()
				}
				if r.LE == 0 {
					r.LE = r.GE
				}
			}
		}
	}
}
