package ike

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/ike/pki"
)

// FromConfig builds the engine configuration from the daemon's
// configuration: the ike section and every tunnel with keying "ike". It
// reads the certificate, key, CA and PSK files (secret files must not be
// readable by group or others).
//
// Tunnel mode "gre" becomes ModeGRE (transport, GRE between the tunnel's
// local and remote addresses); mode "ip" becomes ModeTunnel with 0.0.0.0/0
// (or ::/0) on both sides unless tunnels[].ike.local_ts/remote_ts narrow
// it: the routes decide what enters the tunnel. Mode "ip" peers are taken
// to be third-party gateways and get Peer.ForceEncap.
func FromConfig(c *config.Config) (Config, error) {
	if c.IKE == nil {
		return Config{}, fmt.Errorf("no ike section: %w", ErrConfig)
	}
	ic := c.IKE
	out := Config{
		IKELifetime:   ic.IKELifetime.D(),
		ChildLifetime: ic.ChildLifetime.D(),
		RekeyMargin:   ic.RekeyMargin.D(),
		DPD:           ic.DPD.D(),
		Fragmentation: ic.Fragmentation,
		Port:          ic.Port,
		NATPort:       ic.NATPort,
	}
	var err error
	if ic.LocalID != "" {
		if out.LocalID, err = ParseIdentity(ic.LocalID); err != nil {
			return Config{}, fmt.Errorf("ike.local_id: %w", err)
		}
	}
	if out.Proposals, err = ParseProposals(ic.Proposals, true); err != nil {
		return Config{}, fmt.Errorf("ike.proposals: %w", err)
	}
	if out.ESPProposals, err = ParseProposals(ic.ESPProposals, false); err != nil {
		return Config{}, fmt.Errorf("ike.esp_proposals: %w", err)
	}
	switch ic.Auth {
	case config.AuthPSK:
		b, err := readSecret(ic.PSKFile)
		if err != nil {
			return Config{}, fmt.Errorf("ike.psk_file: %w", err)
		}
		out.PSK = bytes.TrimRight(b, "\r\n")
		if len(out.PSK) == 0 {
			return Config{}, fmt.Errorf("ike.psk_file %s is empty: %w", ic.PSKFile, ErrConfig)
		}
	case config.AuthCert, "":
		cb, err := os.ReadFile(ic.CertFile)
		if err != nil {
			return Config{}, fmt.Errorf("ike.cert_file: %w", err)
		}
		certs, err := pki.ParseCerts(cb)
		if err != nil {
			return Config{}, fmt.Errorf("ike.cert_file %s: %w", ic.CertFile, err)
		}
		for _, crt := range certs {
			out.Certificates = append(out.Certificates, crt.Raw)
		}
		kb, err := readSecret(ic.KeyFile)
		if err != nil {
			return Config{}, fmt.Errorf("ike.key_file: %w", err)
		}
		if out.Key, err = pki.ParseKey(kb); err != nil {
			return Config{}, fmt.Errorf("ike.key_file %s: %w", ic.KeyFile, err)
		}
		ab, err := os.ReadFile(ic.CAFile)
		if err != nil {
			return Config{}, fmt.Errorf("ike.ca_file: %w", err)
		}
		if out.CAs, err = pki.ParseCerts(ab); err != nil {
			return Config{}, fmt.Errorf("ike.ca_file %s: %w", ic.CAFile, err)
		}
	default:
		return Config{}, fmt.Errorf("ike.auth %q: %w", ic.Auth, ErrConfig)
	}
	for i, t := range c.Tunnels {
		if t.Keying != config.KeyingIKE {
			continue
		}
		p := Peer{Name: t.Name, Local: t.Local, Remote: t.Remote, Mode: ModeGRE}
		if t.IKE != nil {
			p.Initiator = t.IKE.Initiator
			if t.IKE.RemoteID != "" {
				if p.RemoteID, err = ParseIdentity(t.IKE.RemoteID); err != nil {
					return Config{}, fmt.Errorf("tunnels[%d].ike.remote_id: %w", i, err)
				}
			}
		}
		if p.RemoteID.IsZero() {
			p.RemoteID = AddrIdentity(t.Remote)
		}
		if t.Mode == config.ModeIP {
			all := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if t.Local.Is6() {
				all = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
			// A third-party peer: make it encapsulate (see ForceEncap).
			p.Mode, p.LocalTS, p.RemoteTS, p.ForceEncap = ModeTunnel, []netip.Prefix{all}, []netip.Prefix{all}, true
			if t.IKE != nil && len(t.IKE.LocalTS) > 0 {
				p.LocalTS = t.IKE.LocalTS
			}
			if t.IKE != nil && len(t.IKE.RemoteTS) > 0 {
				p.RemoteTS = t.IKE.RemoteTS
			}
		}
		out.Peers = append(out.Peers, p)
	}
	if _, err := out.withDefaults(); err != nil {
		return Config{}, err
	}
	return out, nil
}

// readSecret reads a file that must not be readable by group or others.
func readSecret(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is accessible by group or others (mode %v): %w", path, st.Mode().Perm(), ErrConfig)
	}
	return os.ReadFile(path)
}
