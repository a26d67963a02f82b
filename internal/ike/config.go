package ike

import (
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Config is everything an Engine needs to know. Build it with FromConfig
// or by hand (tests); NewEngine applies defaults for zero values.
type Config struct {
	// LocalID is this gateway's identity. With certificates, the zero value
	// means the certificate's subject DN.
	LocalID Identity

	// PSK selects pre-shared key authentication (RFC 7296 §2.15) when set.
	PSK []byte
	// Certificates is this gateway's chain (DER, end-entity first) and Key
	// its private key: certificate authentication with RFC 7427 signatures.
	Certificates [][]byte
	Key          crypto.Signer
	// CAs are the trusted CAs (their key hashes go into CERTREQ).
	CAs []*x509.Certificate
	// Verifier checks peer certificates; nil means NewX509Verifier(CAs).
	Verifier CertVerifier
	// RSAPKCS1 signs with RSASSA-PKCS1-v1_5 instead of RSASSA-PSS.
	RSAPKCS1 bool

	// Proposals (IKE SA) and ESPProposals (child SAs), most preferred first.
	Proposals    []Proposal
	ESPProposals []Proposal

	// IKELifetime and ChildLifetime are hard lifetimes; rekeying starts
	// RekeyMargin (minus up to RekeyMargin/2 of random jitter) earlier.
	IKELifetime   time.Duration
	ChildLifetime time.Duration
	RekeyMargin   time.Duration
	// DPD is the idle time after which an INFORMATIONAL liveness check is
	// sent; the peer is declared dead when the check is not answered within
	// another DPD interval. 0 disables DPD.
	DPD time.Duration

	// Fragmentation announces RFC 7383 support; messages larger than
	// FragmentSize (IP packet size, default 1280) are then fragmented.
	Fragmentation bool
	FragmentSize  int

	// Port and NATPort are the local IKE ports (default 500 and 4500).
	Port, NATPort uint16

	// RetransmitBase is the first retransmission timeout (default 500ms),
	// doubled per retry up to RetransmitMax (default 8s); a request is
	// abandoned after RetransmitTimeout (default 30s) and the IKE SA dropped.
	RetransmitBase, RetransmitMax, RetransmitTimeout time.Duration

	// CookieThreshold is the number of half-open IKE SAs above which the
	// responder demands a cookie (RFC 7296 §2.6); default 64, negative =
	// always.
	CookieThreshold int
	// HalfOpenTimeout drops a half-open responder SA (default 30s).
	HalfOpenTimeout time.Duration
	// NATKeepalive is the NAT-T keepalive interval when this side is behind
	// a NAT (RFC 3948 §4; default 20s).
	NATKeepalive time.Duration
	// RetryInterval is how long an initiator waits before a new attempt
	// after a failure (default 5s, doubled per failure up to 2 minutes).
	RetryInterval time.Duration

	// Peers are the tunnels.
	Peers []Peer
}

// Peer is one tunnel's IKE peer.
type Peer struct {
	// Name is the tunnel name; it labels the child SAs for the installer.
	Name string
	// Local and Remote are the IKE endpoints (the sites' WAN VIPs).
	Local, Remote netip.Addr
	// RemoteID is the identity the peer must prove.
	RemoteID Identity
	// Initiator makes this side start (and restart) the IKE SA.
	Initiator bool
	// Mode is ModeGRE (default) or ModeTunnel.
	Mode ChildMode
	// LocalTS and RemoteTS are the protected subnets for ModeTunnel.
	LocalTS, RemoteTS []netip.Prefix
	// ForceEncap makes the peer encapsulate its ESP in UDP on a path
	// without a NAT: our NAT_DETECTION_SOURCE_IP then matches nothing, so
	// that the peer believes we are behind a NAT (what strongSwan's
	// encap=yes does). The dataplane receives ESP only in UDP (RFC 3948),
	// so a third-party peer that does not encapsulate by itself needs it;
	// havpn peers always encapsulate and do not. The SA's NAT state
	// (SAInfo) stays what was detected; SAInfo.NATFake says we faked.
	ForceEncap bool
}

// selectors returns the peer's configured local and remote selectors.
func (p *Peer) selectors() (local, remote []TrafficSelector) {
	if p.Mode == ModeTunnel {
		for _, l := range p.LocalTS {
			local = append(local, PrefixSelector(l, 0))
		}
		for _, r := range p.RemoteTS {
			remote = append(remote, PrefixSelector(r, 0))
		}
		return local, remote
	}
	return []TrafficSelector{PrefixSelector(netip.PrefixFrom(p.Local, p.Local.BitLen()), ProtoGRE)},
		[]TrafficSelector{PrefixSelector(netip.PrefixFrom(p.Remote, p.Remote.BitLen()), ProtoGRE)}
}

// certAuth reports whether the configuration uses certificates.
func (c *Config) certAuth() bool { return len(c.Certificates) > 0 }

// caHashes returns the CERTREQ data: SHA-1 hashes of the CAs' public keys
// (RFC 7296 §3.7).
func (c *Config) caHashes() []byte {
	var out []byte
	for _, ca := range c.CAs {
		h := sha1.Sum(ca.RawSubjectPublicKeyInfo)
		out = append(out, h[:]...)
	}
	return out
}

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.IKELifetime, 4*time.Hour)
	def(&c.ChildLifetime, time.Hour)
	def(&c.RekeyMargin, 5*time.Minute)
	def(&c.RetransmitBase, 500*time.Millisecond)
	def(&c.RetransmitMax, 8*time.Second)
	def(&c.RetransmitTimeout, 30*time.Second)
	def(&c.HalfOpenTimeout, 30*time.Second)
	def(&c.NATKeepalive, 20*time.Second)
	def(&c.RetryInterval, 5*time.Second)
	if c.FragmentSize == 0 {
		c.FragmentSize = 1280
	}
	if c.Port == 0 {
		c.Port = 500
	}
	if c.NATPort == 0 {
		c.NATPort = 4500
	}
	if c.CookieThreshold == 0 {
		c.CookieThreshold = 64
	}
	if len(c.Proposals) == 0 || len(c.ESPProposals) == 0 {
		i, e := DefaultProposals()
		if len(c.Proposals) == 0 {
			c.Proposals = i
		}
		if len(c.ESPProposals) == 0 {
			c.ESPProposals = e
		}
	}
	if c.RekeyMargin >= c.ChildLifetime || c.RekeyMargin >= c.IKELifetime {
		return c, fmt.Errorf("rekey margin %s not below the lifetimes (%s, %s): %w", c.RekeyMargin, c.IKELifetime, c.ChildLifetime, ErrConfig)
	}
	switch {
	case len(c.PSK) > 0 && c.certAuth():
		return c, fmt.Errorf("both a PSK and certificates: %w", ErrConfig)
	case len(c.PSK) == 0 && !c.certAuth():
		return c, fmt.Errorf("neither a PSK nor certificates: %w", ErrConfig)
	case c.certAuth():
		if c.Key == nil {
			return c, fmt.Errorf("certificate without a private key: %w", ErrConfig)
		}
		leaf, err := x509.ParseCertificate(c.Certificates[0])
		if err != nil {
			return c, fmt.Errorf("parsing own certificate: %w: %w", ErrConfig, err)
		}
		if c.LocalID.IsZero() {
			c.LocalID = DNIdentity(leaf)
		} else if !certHasIdentity(leaf, c.LocalID) {
			return c, fmt.Errorf("own certificate %q does not contain local identity %s: %w", leaf.Subject, c.LocalID, ErrConfig)
		}
		if c.LocalID.Type == DNIdentity(leaf).Type {
			c.LocalID = DNIdentity(leaf) // send the exact DER of the certificate
		}
		if c.Verifier == nil {
			if len(c.CAs) == 0 {
				return c, fmt.Errorf("certificate authentication without CAs: %w", ErrConfig)
			}
			c.Verifier = NewX509Verifier(c.CAs)
		}
	}
	if c.LocalID.IsZero() {
		return c, fmt.Errorf("no local identity: %w", ErrConfig)
	}
	names := map[string]bool{}
	c.Peers = slices.Clone(c.Peers)
	for i := range c.Peers {
		p := &c.Peers[i]
		if p.Name == "" || names[p.Name] {
			return c, fmt.Errorf("peer %d: empty or duplicate name %q: %w", i, p.Name, ErrConfig)
		}
		names[p.Name] = true
		if !p.Local.IsValid() || !p.Remote.IsValid() {
			return c, fmt.Errorf("peer %s: local and remote addresses required: %w", p.Name, ErrConfig)
		}
		if p.RemoteID.IsZero() {
			return c, fmt.Errorf("peer %s: remote identity required: %w", p.Name, ErrConfig)
		}
		if p.Mode == 0 {
			p.Mode = ModeGRE
		}
		if p.Mode == ModeTunnel && (len(p.LocalTS) == 0 || len(p.RemoteTS) == 0) {
			return c, fmt.Errorf("peer %s: tunnel mode needs local and remote subnets: %w", p.Name, ErrConfig)
		}
	}
	return c, nil
}
