package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config is one gateway's validated configuration (schema version 1).
// docs/CONFIG.md describes every field. The json tags repeat the yaml names
// so that JSON output of a Config (havpn config show -o json) uses the
// names of the file.
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

	Version   int        `yaml:"version" json:"version"`
	Node      Node       `yaml:"node" json:"node"`
	Log       Log        `yaml:"log" json:"log"`
	Control   Control    `yaml:"control" json:"control"`
	Metrics   Metrics    `yaml:"metrics" json:"metrics"`
	Cluster   *Cluster   `yaml:"cluster,omitempty" json:"cluster,omitzero"`
	Resources []Resource `yaml:"resources" json:"resources,omitzero"`
	Tunnels   []Tunnel   `yaml:"tunnels" json:"tunnels,omitzero"`
	IKE       *IKE       `yaml:"ike,omitempty" json:"ike,omitzero"`
	BGP       *BGP       `yaml:"bgp,omitempty" json:"bgp,omitzero"`
	StateSync *StateSync `yaml:"statesync,omitempty" json:"statesync,omitzero"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("150ms", "2s", "4h").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.String without zero minutes and
// seconds after hours or minutes: "150ms", "2s", "1m30s", "4h", "1h30m".
// time.ParseDuration reads it back.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// MarshalText formats d like String, so that JSON output (havpn config show
// -o json, the control socket) shows "150ms" as the YAML file does rather
// than a count of nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a Go duration string ("150ms", "2s").
func (d *Duration) UnmarshalText(b []byte) error {
	t, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(t)
	return nil
}

// Node identifies this gateway.
type Node struct {
	Name string `yaml:"name" json:"name"` // [a-z0-9-]{1,32}
	Site string `yaml:"site" json:"site"`
}

// Log configures the daemon's log/slog handler.
type Log struct {
	Level  string `yaml:"level" json:"level"`   // debug|info|warn|error
	Format string `yaml:"format" json:"format"` // text|json
}

// Control configures the control socket.
type Control struct {
	Socket string `yaml:"socket" json:"socket"` // absolute path of the unix socket
}

// Metrics configures the Prometheus listener.
type Metrics struct {
	Listen string `yaml:"listen" json:"listen"` // host:port; "" disables
}

// Cluster configures the heartbeat cluster. Absent = standalone (always active).
type Cluster struct {
	NodeID       uint8        `yaml:"node_id" json:"node_id"`   // 1..255
	Priority     uint8        `yaml:"priority" json:"priority"` // higher wins
	AutoFailback bool         `yaml:"auto_failback" json:"auto_failback"`
	Maintenance  bool         `yaml:"maintenance" json:"maintenance"`     // never takes over
	AuthKeyFile  string       `yaml:"auth_key_file" json:"auth_key_file"` // absolute after Load; HMAC-SHA256 key, secret
	Port         uint16       `yaml:"port" json:"port"`                   // UDP
	Timers       Timers       `yaml:"timers" json:"timers"`
	Peers        []Peer       `yaml:"peers" json:"peers,omitzero"`
	Links        []Link       `yaml:"links" json:"links,omitzero"`
	PingNodes    []netip.Addr `yaml:"ping_nodes" json:"ping_nodes,omitzero"`
	Monitor      []string     `yaml:"monitor" json:"monitor,omitzero"` // interfaces whose carrier is watched
	GARP         GARP         `yaml:"garp" json:"garp"`
	LockMemory   bool         `yaml:"lock_memory" json:"lock_memory"`
	Realtime     bool         `yaml:"realtime" json:"realtime"`
}

// Timers are the heartbeat timers:
// 10ms <= keepalive < warntime <= deadtime <= initdead.
type Timers struct {
	Keepalive Duration `yaml:"keepalive" json:"keepalive"`
	Warntime  Duration `yaml:"warntime" json:"warntime"`
	Deadtime  Duration `yaml:"deadtime" json:"deadtime"`
	Initdead  Duration `yaml:"initdead" json:"initdead"`
}

// Peer is another member of this node's cluster.
type Peer struct {
	Name   string `yaml:"name" json:"name"`
	NodeID uint8  `yaml:"node_id" json:"node_id"`
}

// Link is one heartbeat path. Exactly one of these shapes is set:
// Interface + Peer (unicast), Interface + Group (multicast), or Serial + Baud.
type Link struct {
	Name      string     `yaml:"name" json:"name"`
	Interface string     `yaml:"interface,omitempty" json:"interface,omitzero"`
	Peer      netip.Addr `yaml:"peer,omitempty" json:"peer,omitzero"`
	Group     netip.Addr `yaml:"group,omitempty" json:"group,omitzero"`
	Serial    string     `yaml:"serial,omitempty" json:"serial,omitzero"` // device path
	Baud      int        `yaml:"baud,omitempty" json:"baud,omitzero"`     // serial links only
}

// GARP configures gratuitous ARP / unsolicited NA after VIP takeover.
type GARP struct {
	Count    int      `yaml:"count" json:"count"` // 0..100
	Interval Duration `yaml:"interval" json:"interval"`
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
	Name      string       `yaml:"name" json:"name"`
	Type      ResourceType `yaml:"type" json:"type"`
	Address   netip.Prefix `yaml:"address,omitempty" json:"address,omitzero"`     // vip: host address with prefix length
	Interface string       `yaml:"interface,omitempty" json:"interface,omitzero"` // vip
	Tunnel    string       `yaml:"tunnel,omitempty" json:"tunnel,omitzero"`       // tunnel: names a Tunnels entry
	Path      string       `yaml:"path,omitempty" json:"path,omitzero"`           // script: LSB start|stop|status
	Timeout   Duration     `yaml:"timeout" json:"timeout"`
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
	Name        string       `yaml:"name" json:"name"` // interface name, <= 15 chars
	Local       netip.Addr   `yaml:"local" json:"local"`
	Remote      netip.Addr   `yaml:"remote" json:"remote"`
	Port        uint16       `yaml:"port" json:"port"`
	Mode        TunnelMode   `yaml:"mode" json:"mode"`
	GREKey      *uint32      `yaml:"gre_key,omitempty" json:"gre_key,omitzero"` // nil = no key (RFC 2890)
	Address     netip.Prefix `yaml:"address" json:"address"`                    // inner address with prefix length
	PeerAddress netip.Addr   `yaml:"peer_address" json:"peer_address"`
	// Routes are installed through the tunnel's interface while it runs:
	// static routing to the other site until BGP does it.
	Routes       []netip.Prefix  `yaml:"routes,omitempty" json:"routes,omitempty"`
	WANMTU       int             `yaml:"wan_mtu" json:"wan_mtu"`
	MTU          int             `yaml:"mtu" json:"mtu"` // always set after Load (derived when written as 0)
	Cipher       Cipher          `yaml:"cipher" json:"cipher"`
	ReplayWindow int             `yaml:"replay_window" json:"replay_window"`
	ESN          bool            `yaml:"esn" json:"esn"`
	Keepalive    TunnelKeepalive `yaml:"keepalive" json:"keepalive"`
	Keying       Keying          `yaml:"keying" json:"keying"`
	Manual       *ManualKeys     `yaml:"manual,omitempty" json:"manual,omitzero"` // set iff Keying == KeyingManual
	IKE          *TunnelIKE      `yaml:"ike,omitempty" json:"ike,omitzero"`       // set iff Keying == KeyingIKE
}

// TunnelKeepalive configures in-tunnel liveness probes.
type TunnelKeepalive struct {
	Interval Duration `yaml:"interval" json:"interval"`
	Dead     Duration `yaml:"dead" json:"dead"`
}

// ManualKeys are static SAs for a tunnel with keying: manual.
type ManualKeys struct {
	Inbound  ManualSA `yaml:"inbound" json:"inbound"`
	Outbound ManualSA `yaml:"outbound" json:"outbound"`
}

// ManualSA is one static SA. KeyFile (absolute after Load, secret) holds
// key+salt, raw or hex, of CipherKeyLen(cipher) bytes; read it with ReadKey.
type ManualSA struct {
	SPI     uint32 `yaml:"spi" json:"spi"` // >= 256
	KeyFile string `yaml:"key_file" json:"key_file"`
}

// TunnelIKE is the per-tunnel IKE settings.
type TunnelIKE struct {
	RemoteID  string `yaml:"remote_id" json:"remote_id"`
	Initiator bool   `yaml:"initiator" json:"initiator"`
	// LocalTS and RemoteTS are the subnets a mode ip tunnel protects
	// (tunnel-mode traffic selectors for third-party peers); empty means
	// everything (0.0.0.0/0 or ::/0).
	LocalTS  []netip.Prefix `yaml:"local_ts,omitempty" json:"local_ts,omitempty"`
	RemoteTS []netip.Prefix `yaml:"remote_ts,omitempty" json:"remote_ts,omitempty"`
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
	Port          uint16   `yaml:"port" json:"port"`
	NATPort       uint16   `yaml:"nat_port" json:"nat_port"`
	LocalID       string   `yaml:"local_id" json:"local_id"` // @fqdn, IP, or DN
	Auth          IKEAuth  `yaml:"auth" json:"auth"`
	CertFile      string   `yaml:"cert_file,omitempty" json:"cert_file,omitzero"` // cert; absolute after Load
	KeyFile       string   `yaml:"key_file,omitempty" json:"key_file,omitzero"`   // cert; secret; absolute after Load
	CAFile        string   `yaml:"ca_file,omitempty" json:"ca_file,omitzero"`     // cert; absolute after Load
	PSKFile       string   `yaml:"psk_file,omitempty" json:"psk_file,omitzero"`   // psk; secret; absolute after Load
	Proposals     []string `yaml:"proposals" json:"proposals,omitzero"`
	ESPProposals  []string `yaml:"esp_proposals" json:"esp_proposals,omitzero"`
	IKELifetime   Duration `yaml:"ike_lifetime" json:"ike_lifetime"`
	ChildLifetime Duration `yaml:"child_lifetime" json:"child_lifetime"`
	RekeyMargin   Duration `yaml:"rekey_margin" json:"rekey_margin"`
	DPD           Duration `yaml:"dpd" json:"dpd"`
	Fragmentation bool     `yaml:"fragmentation" json:"fragmentation"`
}

// BGP configures the embedded BGP speaker.
type BGP struct {
	ASN          uint32         `yaml:"asn" json:"asn"`
	RouterID     netip.Addr     `yaml:"router_id" json:"router_id"`     // IPv4
	AlwaysOn     bool           `yaml:"always_on" json:"always_on"`     // false: runs only while active
	ListenPort   int32          `yaml:"listen_port" json:"listen_port"` // -1 = no listener
	Neighbors    []Neighbor     `yaml:"neighbors" json:"neighbors,omitzero"`
	Networks     []netip.Prefix `yaml:"networks" json:"networks,omitzero"`
	Redistribute []Redistribute `yaml:"redistribute" json:"redistribute,omitzero"`
	PrefixLists  []PrefixList   `yaml:"prefix_lists" json:"prefix_lists,omitzero"`
	FIB          FIB            `yaml:"fib" json:"fib"`
}

// Neighbor is one BGP peer.
type Neighbor struct {
	Address         netip.Addr `yaml:"address" json:"address"`
	RemoteAS        uint32     `yaml:"remote_as" json:"remote_as"`
	NextHopSelf     bool       `yaml:"next_hop_self" json:"next_hop_self"`
	Passive         bool       `yaml:"passive" json:"passive"`
	HoldTime        Duration   `yaml:"hold_time" json:"hold_time"`                            // 0 or >= 3s
	Keepalive       Duration   `yaml:"keepalive" json:"keepalive"`                            // < HoldTime (0 iff HoldTime is 0)
	PasswordFile    string     `yaml:"password_file,omitempty" json:"password_file,omitzero"` // TCP-MD5; secret; absolute after Load
	GracefulRestart bool       `yaml:"graceful_restart" json:"graceful_restart"`
	Import          string     `yaml:"import" json:"import"` // prefix list name or ""
	Export          string     `yaml:"export" json:"export"` // prefix list name or ""
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
	Source     RedistSource `yaml:"source" json:"source"`
	PrefixList string       `yaml:"prefix_list" json:"prefix_list"` // optional
}

// PrefixList is an ordered list of prefix rules; first match wins.
type PrefixList struct {
	Name  string       `yaml:"name" json:"name"`
	Rules []PrefixRule `yaml:"rules" json:"rules,omitzero"`
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
	Action Action       `yaml:"action" json:"action"`
	Prefix netip.Prefix `yaml:"prefix" json:"prefix"`
	GE     int          `yaml:"ge" json:"ge"`
	LE     int          `yaml:"le" json:"le"`
}

// FIB configures how learned routes go into the kernel.
type FIB struct {
	Table     uint32 `yaml:"table" json:"table"`
	Protocol  uint8  `yaml:"protocol" json:"protocol"`
	Multipath bool   `yaml:"multipath" json:"multipath"`
}

// StateSync configures the standby state copy.
type StateSync struct {
	Enabled   bool     `yaml:"enabled" json:"enabled"`
	Link      string   `yaml:"link" json:"link"` // names a non-serial cluster link
	Port      uint16   `yaml:"port" json:"port"`
	Conntrack bool     `yaml:"conntrack" json:"conntrack"`
	Interval  Duration `yaml:"interval" json:"interval"`
	SeqMargin uint64   `yaml:"seq_margin" json:"seq_margin"`
}
