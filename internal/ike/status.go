package ike

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// SAInfo describes one IKE SA, in the spirit of swanctl --list-sas.
type SAInfo struct {
	Peer      string `json:"peer"`
	State     string `json:"state"`
	Initiator bool   `json:"initiator"`
	SPIi      string `json:"spi_i"`
	SPIr      string `json:"spi_r"`
	Local     string `json:"local"`
	Remote    string `json:"remote"`
	LocalID   string `json:"local_id"`
	RemoteID  string `json:"remote_id"`
	Proposal  string `json:"proposal,omitempty"`
	// NATLocal and NATRemote are the result of NAT detection (RFC 7296
	// §2.23): this side, or the peer, is behind a NAT. A peer that forces
	// UDP encapsulation (strongSwan with encap=yes or kernel-libipsec)
	// shows as NATRemote, since it claims to be behind one.
	NATLocal  bool `json:"nat_local"`
	NATRemote bool `json:"nat_remote"`
	// NATFake says this side claimed to be behind a NAT so that the peer
	// encapsulates (Peer.ForceEncap on a NAT-free path).
	NATFake     bool        `json:"nat_fake"`
	Established time.Time   `json:"established,omitzero"`
	RekeyAt     time.Time   `json:"rekey_at,omitzero"`
	ExpireAt    time.Time   `json:"expire_at,omitzero"`
	Children    []ChildInfo `json:"children,omitempty"`
}

// ChildInfo describes one child SA.
type ChildInfo struct {
	InSPI       string    `json:"in_spi"`
	OutSPI      string    `json:"out_spi"`
	Proposal    string    `json:"proposal"`
	Cipher      string    `json:"cipher"`
	Mode        string    `json:"mode"`
	LocalTS     []string  `json:"local_ts"`
	RemoteTS    []string  `json:"remote_ts"`
	Active      bool      `json:"active"`
	Established time.Time `json:"established"`
	RekeyAt     time.Time `json:"rekey_at"`
	ExpireAt    time.Time `json:"expire_at"`
}

func tsString(s TrafficSelector) string {
	var b strings.Builder
	if s.Start == s.End {
		b.WriteString(s.Start.String())
	} else {
		b.WriteString(s.Start.String() + "-" + s.End.String())
	}
	if s.Proto != 0 {
		fmt.Fprintf(&b, "[%d]", s.Proto)
	}
	if s.StartPort != 0 || s.EndPort != 65535 {
		fmt.Fprintf(&b, ":%d-%d", s.StartPort, s.EndPort)
	}
	return b.String()
}

// SAs returns the IKE SAs sorted by peer and SPI.
func (e *Engine) SAs() []SAInfo {
	var out []SAInfo
	for _, sa := range e.sasSnapshot() {
		in := SAInfo{
			Peer: sa.peerName(), State: sa.state.String(), Initiator: sa.initiator,
			SPIi: fmt.Sprintf("%016x", sa.spiI), SPIr: fmt.Sprintf("%016x", sa.spiR),
			Local: sa.local.String(), Remote: sa.remote.String(),
			LocalID: e.cfg.LocalID.String(), RemoteID: sa.remoteID.String(),
			NATLocal: sa.natLocal, NATRemote: sa.natRemote, NATFake: sa.natFake,
			Established: sa.estAt, RekeyAt: sa.rekeyAt, ExpireAt: sa.expireAt,
		}
		if sa.prf.ID() != 0 {
			in.Proposal = sa.prop.String()
		}
		for _, ch := range sa.children {
			ci := ChildInfo{
				InSPI: fmt.Sprintf("%08x", ch.inSPI), OutSPI: fmt.Sprintf("%08x", ch.outSPI),
				Proposal: ch.prop.String(), Cipher: ch.prop.ESPCipher(), Mode: ch.mode.String(),
				Active:      !ch.inactive && ch.successor == nil && !ch.deleting,
				Established: ch.created, RekeyAt: ch.rekeyAt, ExpireAt: ch.expireAt,
			}
			for _, s := range ch.localTS {
				ci.LocalTS = append(ci.LocalTS, tsString(s))
			}
			for _, s := range ch.remoteTS {
				ci.RemoteTS = append(ci.RemoteTS, tsString(s))
			}
			in.Children = append(in.Children, ci)
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b SAInfo) int {
		if c := strings.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		return strings.Compare(a.SPIi, b.SPIi)
	})
	return out
}

// WriteSAs prints sas in the style of swanctl --list-sas (for `havpn
// sas`); now is used for relative times. A "*" marks this side's SPI.
func WriteSAs(w io.Writer, sas []SAInfo, now time.Time) error {
	var b strings.Builder
	rel := func(t time.Time) string { return t.Sub(now).Round(time.Second).Abs().String() }
	for _, s := range sas {
		si, sr := s.SPIi+"_i", s.SPIr+"_r"
		if s.Initiator {
			si += "*"
		} else {
			sr += "*"
		}
		fmt.Fprintf(&b, "%s: %s, IKEv2, %s %s\n", s.Peer, s.State, si, sr)
		fmt.Fprintf(&b, "  local  '%s' @ %s\n", s.LocalID, s.Local)
		fmt.Fprintf(&b, "  remote '%s' @ %s", s.RemoteID, s.Remote)
		switch {
		case s.NATRemote || s.NATLocal:
			b.WriteString(" (NAT-T")
			if s.NATLocal {
				b.WriteString(", local behind NAT")
			}
			b.WriteString(")")
		case s.NATFake:
			b.WriteString(" (UDP encapsulation forced)")
		}
		b.WriteString("\n")
		if s.Proposal != "" {
			fmt.Fprintf(&b, "  %s\n", s.Proposal)
		}
		if !s.Established.IsZero() {
			fmt.Fprintf(&b, "  established %s ago, rekeying in %s, expires in %s\n", rel(s.Established), rel(s.RekeyAt), rel(s.ExpireAt))
		}
		for _, c := range s.Children {
			state := "INSTALLED"
			if !c.Active {
				state = "INSTALLED (inbound only)"
			}
			mode := "TUNNEL-in-UDP"
			if c.Mode == "gre" {
				mode = "TRANSPORT-in-UDP (GRE)"
			}
			fmt.Fprintf(&b, "  %s: %s, %s, ESP:%s\n", s.Peer, state, mode, c.Proposal)
			fmt.Fprintf(&b, "    in  %s, out %s\n", c.InSPI, c.OutSPI)
			fmt.Fprintf(&b, "    installed %s ago, rekeying in %s, expires in %s\n", rel(c.Established), rel(c.RekeyAt), rel(c.ExpireAt))
			fmt.Fprintf(&b, "    local  %s\n", strings.Join(c.LocalTS, " "))
			fmt.Fprintf(&b, "    remote %s\n", strings.Join(c.RemoteTS, " "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
