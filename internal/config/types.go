package config

import (
	"net/netip"
	"time"
)

// Config is one gateway's validated configuration (schema version 1).
//
// A *Config returned by Load or Parse is fully defaulted and validated; treat
// it as immutable: it is safe for concurrent reads by any number of
// goroutines, and nobody may modify it after Load/Parse returned. Optional
// sections are nil pointers when absent (Cluster nil = standalone node, IKE nil
// = no IKE, BGP nil = no BGP speaker, StateSync nil = no state sync).
type Config struct {
	// Path is the absolute path of the file the config was read from
	// (empty for Parse without a file name). Not part of the YAML.
	Path string `yaml:"-" json:"-"`

	Version   int        `yaml:"version"`
	Node      Node       `yaml:"node"`
	Log       Log        `yaml:"log"`
	Control   Control    `yaml:"control"`
	Metrics   Metrics    `yaml:"metrics"`
	Cluster   *Cluster   `yaml:"cluster,omitempty"`
	Resources []Resource `yaml:"resources"`
	Tunnels   []Tunnel   `yaml:"tunnels"`
	IKE       *IKE       `yaml:"ike,omitempty"`
	BGP       *BGP       `yaml:"bgp,omitempty"`
	StateSync *StateSync `yaml:"statesync,omitempty"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("150ms", "2s", "4h").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.String.
func (d Duration) String() string { return time.Duration(d).String() }

// Node identifies this gateway.
type Node struct {
	Name string `yaml:"name"` // [a-z0-9-]{1,32}
	Site string `yaml:"site"`
}

// Log configures the daemon's log/slog handler.
type Log struct {
	Level  string `yaml:"level"`  // debug|info|warn|error
	Format string `yaml:"format"` // text|json
}

// Control configures the control socket.
type Control struct {
	Socket string `yaml:"socket"` // absolute path of the unix socket
}

// Metrics configures the Prometheus listener.
type Metrics struct {
	Listen string `yaml:"listen"` // host:port; "" disables
}

// Cluster configures the heartbeat cluster. Absent = standalone (always active).
type Cluster struct {
	NodeID       uint8        `yaml:"node_id"`  // 1..255
	Priority     uint8        `yaml:"priority"` // higher wins
	AutoFailback bool         `yaml:"auto_failback"`
	Maintenance  bool         `yaml:"maintenance"`   // never takes over
	AuthKeyFile  string       `yaml:"auth_key_file"` // absolute after Load; HMAC-SHA256 key, secret
	Port         uint16       `yaml:"port"`          // UDP
	Timers       Timers       `yaml:"timers"`
	Peers        []Peer       `yaml:"peers"`
	Links        []Link       `yaml:"links"`
	PingNodes    []netip.Addr `yaml:"ping_nodes"`
	Monitor      []string     `yaml:"monitor"` // interfaces whose carrier is watched
	GARP         GARP         `yaml:"garp"`
	LockMemory   bool         `yaml:"lock_memory"`
	Realtime     bool         `yaml:"realtime"`
}

// Timers are the heartbeat timers:
// 10ms <= keepalive < warntime <= deadtime <= initdead.
type Timers struct {
	Keepalive Duration `yaml:"keepalive"`
	Warntime  Duration `yaml:"warntime"`
	Deadtime  Duration `yaml:"deadtime"`
	Initdead  Duration `yaml:"initdead"`
}

// Peer is another member of this node's cluster.
type Peer struct {
	Name   string `yaml:"name"`
	NodeID uint8  `yaml:"node_id"`
}

// Link is one heartbeat path. Exactly one of these shapes is set:
// Interface + Peer (unicast), Interface + Group (multicast), or Serial + Baud.
type Link struct {
	Name      string     `yaml:"name"`
	Interface string     `yaml:"interface,omitempty"`
	Peer      netip.Addr `yaml:"peer,omitempty"`
	Group     netip.Addr `yaml:"group,omitempty"`
	Serial    string     `yaml:"serial,omitempty"` // device path
	Baud      int        `yaml:"baud,omitempty"`   // serial links only
}

// GARP configures gratuitous ARP / unsolicited NA after VIP takeover.
type GARP struct {
	Count    int      `yaml:"count"` // 0..100
	Interval Duration `yaml:"interval"`
}

// ResourceType is the kind of a resource.
type ResourceType string

// Resource types.
const (
	ResourceVIP    ResourceType = "vip"
	ResourceTunnel ResourceType = "tunnel"
	ResourceIKE    ResourceType = "ike"
	ResourceBGP    ResourceType = "bgp"
	ResourceScript ResourceType = "script"
)

// Resource is one member of the ordered resource group: started in order,
// stopped in reverse. Which fields are set depends on Type:
// vip: Address + Interface; tunnel: Tunnel; script: Path; ike, bgp: none.
type Resource struct {
	Name      string       `yaml:"name"`
	Type      ResourceType `yaml:"type"`
	Address   netip.Prefix `yaml:"address,omitempty"`   // vip: host address with prefix length
	Interface string       `yaml:"interface,omitempty"` // vip
	Tunnel    string       `yaml:"tunnel,omitempty"`    // tunnel: names a Tunnels entry
	Path      string       `yaml:"path,omitempty"`      // script: LSB start|stop|status
	Timeout   Duration     `yaml:"timeout"`
}

// TunnelMode is what the ESP payload carries.
type TunnelMode string

// Tunnel modes.
const (
	ModeGRE TunnelMode = "gre" // GRE in ESP, next header 47
	ModeIP  TunnelMode = "ip"  // IP in ESP, next header 4/41
)

// Cipher is an ESP AEAD transform.
type Cipher string

// Ciphers.
const (
	CipherAESGCM128        Cipher = "aes-gcm-128"       // RFC 4106
	CipherAESGCM256        Cipher = "aes-gcm-256"       // RFC 4106
	CipherChaCha20Poly1305 Cipher = "chacha20-poly1305" // RFC 7634
)

// Keying is how a tunnel's SAs are keyed.
type Keying string

// Keying methods.
const (
	KeyingIKE    Keying = "ike"
	KeyingManual Keying = "manual"
)

// Tunnel is one routed GRE-in-ESP (or IP-in-ESP) tunnel over UDP.
type Tunnel struct {
	Name         string          `yaml:"name"` // interface name, <= 15 chars
	Local        netip.Addr      `yaml:"local"`
	Remote       netip.Addr      `yaml:"remote"`
	Port         uint16          `yaml:"port"`
	Mode         TunnelMode      `yaml:"mode"`
	GREKey       *uint32         `yaml:"gre_key,omitempty"` // nil = no key (RFC 2890)
	Address      netip.Prefix    `yaml:"address"`           // inner address with prefix length
	PeerAddress  netip.Addr      `yaml:"peer_address"`
	WANMTU       int             `yaml:"wan_mtu"`
	MTU          int             `yaml:"mtu"` // always set after Load (derived when written as 0)
	Cipher       Cipher          `yaml:"cipher"`
	ReplayWindow int             `yaml:"replay_window"`
	ESN          bool            `yaml:"esn"`
	Keepalive    TunnelKeepalive `yaml:"keepalive"`
	Keying       Keying          `yaml:"keying"`
	Manual       *ManualKeys     `yaml:"manual,omitempty"` // set iff Keying == KeyingManual
	IKE          *TunnelIKE      `yaml:"ike,omitempty"`    // set iff Keying == KeyingIKE
}

// TunnelKeepalive configures in-tunnel liveness probes.
type TunnelKeepalive struct {
	Interval Duration `yaml:"interval"`
	Dead     Duration `yaml:"dead"`
}

// ManualKeys are static SAs for a tunnel with keying: manual.
type ManualKeys struct {
	Inbound  ManualSA `yaml:"inbound"`
	Outbound ManualSA `yaml:"outbound"`
}

// ManualSA is one static SA. KeyFile (absolute after Load, secret) holds
// key+salt, raw or hex, of CipherKeyLen(cipher) bytes; read it with ReadKey.
type ManualSA struct {
	SPI     uint32 `yaml:"spi"` // >= 256
	KeyFile string `yaml:"key_file"`
}

// TunnelIKE is the per-tunnel IKE settings.
type TunnelIKE struct {
	RemoteID  string `yaml:"remote_id"`
	Initiator bool   `yaml:"initiator"`
}

// IKEAuth is the IKE authentication method.
type IKEAuth string

// IKE authentication methods.
const (
	AuthCert IKEAuth = "cert"
	AuthPSK  IKEAuth = "psk"
)

// IKE is the IKEv2 daemon's global settings (RFC 7296).
type IKE struct {
	Port          uint16   `yaml:"port"`
	NATPort       uint16   `yaml:"nat_port"`
	LocalID       string   `yaml:"local_id"` // @fqdn, IP, or DN
	Auth          IKEAuth  `yaml:"auth"`
	CertFile      string   `yaml:"cert_file,omitempty"` // cert; absolute after Load
	KeyFile       string   `yaml:"key_file,omitempty"`  // cert; secret; absolute after Load
	CAFile        string   `yaml:"ca_file,omitempty"`   // cert; absolute after Load
	PSKFile       string   `yaml:"psk_file,omitempty"`  // psk; secret; absolute after Load
	Proposals     []string `yaml:"proposals"`
	ESPProposals  []string `yaml:"esp_proposals"`
	IKELifetime   Duration `yaml:"ike_lifetime"`
	ChildLifetime Duration `yaml:"child_lifetime"`
	RekeyMargin   Duration `yaml:"rekey_margin"`
	DPD           Duration `yaml:"dpd"`
	Fragmentation bool     `yaml:"fragmentation"`
}

// BGP configures the embedded BGP speaker.
type BGP struct {
	ASN          uint32         `yaml:"asn"`
	RouterID     netip.Addr     `yaml:"router_id"`   // IPv4
	AlwaysOn     bool           `yaml:"always_on"`   // false: runs only while active
	ListenPort   int32          `yaml:"listen_port"` // -1 = no listener
	Neighbors    []Neighbor     `yaml:"neighbors"`
	Networks     []netip.Prefix `yaml:"networks"`
	Redistribute []Redistribute `yaml:"redistribute"`
	PrefixLists  []PrefixList   `yaml:"prefix_lists"`
	FIB          FIB            `yaml:"fib"`
}

// Neighbor is one BGP peer.
type Neighbor struct {
	Address         netip.Addr `yaml:"address"`
	RemoteAS        uint32     `yaml:"remote_as"`
	NextHopSelf     bool       `yaml:"next_hop_self"`
	Passive         bool       `yaml:"passive"`
	HoldTime        Duration   `yaml:"hold_time"`               // 0 or >= 3s
	Keepalive       Duration   `yaml:"keepalive"`               // < HoldTime (0 iff HoldTime is 0)
	PasswordFile    string     `yaml:"password_file,omitempty"` // TCP-MD5; secret; absolute after Load
	GracefulRestart bool       `yaml:"graceful_restart"`
	Import          string     `yaml:"import"` // prefix list name or ""
	Export          string     `yaml:"export"` // prefix list name or ""
}

// RedistSource is a kind of kernel route BGP redistributes.
type RedistSource string

// Redistribution sources.
const (
	RedistConnected RedistSource = "connected"
	RedistStatic    RedistSource = "static"
	RedistKernel    RedistSource = "kernel"
)

// Redistribute imports kernel routes of one source into BGP.
type Redistribute struct {
	Source     RedistSource `yaml:"source"`
	PrefixList string       `yaml:"prefix_list"` // optional
}

// PrefixList is an ordered list of prefix rules; first match wins.
type PrefixList struct {
	Name  string       `yaml:"name"`
	Rules []PrefixRule `yaml:"rules"`
}

// Action is a prefix rule's verdict.
type Action string

// Actions.
const (
	Permit Action = "permit"
	Deny   Action = "deny"
)

// PrefixRule matches routes inside Prefix whose length is in [GE, LE].
// After Load, GE and LE are always set: written absent, GE defaults to the
// prefix length and LE to GE when GE was written, else to the prefix length
// (exact match).
type PrefixRule struct {
	Action Action       `yaml:"action"`
	Prefix netip.Prefix `yaml:"prefix"`
	GE     int          `yaml:"ge"`
	LE     int          `yaml:"le"`
}

// FIB configures how learned routes go into the kernel.
type FIB struct {
	Table     uint32 `yaml:"table"`
	Protocol  uint8  `yaml:"protocol"`
	Multipath bool   `yaml:"multipath"`
}

// StateSync configures the standby state copy.
type StateSync struct {
	Enabled   bool     `yaml:"enabled"`
	Link      string   `yaml:"link"` // names a non-serial cluster link
	Port      uint16   `yaml:"port"`
	Conntrack bool     `yaml:"conntrack"`
	Interval  Duration `yaml:"interval"`
	SeqMargin uint64   `yaml:"seq_margin"`
}
