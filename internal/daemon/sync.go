package daemon

import (
	"fmt"
	"net/netip"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/statesync"
)

// buildSync makes the state syncer of a clustered node whose config enables
// it: it listens on statesync.port and sends to the peer's address on the
// named cluster link.
func (d *Daemon) buildSync(p *parts) error {
	cfg := p.cfg
	ss := cfg.StateSync
	if cfg.Cluster == nil || ss == nil || !ss.Enabled {
		return nil
	}
	var peer netip.Addr
	for _, l := range cfg.Cluster.Links {
		if l.Name == ss.Link {
			peer = l.Peer
			if !peer.IsValid() {
				peer = l.Group
			}
		}
	}
	key, err := config.ReadSecret(cfg.Cluster.AuthKeyFile)
	if err != nil {
		return fmt.Errorf("statesync: %w", err)
	}
	s, err := statesync.New(statesync.Options{
		Log: d.log, Node: cfg.Cluster.NodeID, Key: key,
		Listen:   netip.AddrPortFrom(netip.IPv4Unspecified(), ss.Port),
		Peer:     netip.AddrPortFrom(peer, ss.Port),
		Interval: ss.Interval.D(),
		Source:   p.syncEntries,
		Routes:   p.syncRoutes,
	})
	if err != nil {
		return err
	}
	p.sync = s
	return nil
}

// syncEntries lists the sending SA of every running tunnel.
func (p *parts) syncEntries() []statesync.Entry {
	var out []statesync.Entry
	for _, name := range sortedNames(p.tunnels) {
		out = append(out, p.tunnels[name].outboundSeqs()...)
	}
	return out
}

// outboundSeq is where a tunnel's manual outbound SA starts on this node:
// past what the peer last reported, by the configured margin.
func (p *parts) outboundSeq(tunnel string, spi uint32) uint64 {
	if p.sync == nil {
		return 0
	}
	last, ok := p.sync.Last(tunnel, spi)
	if !ok {
		return 0
	}
	return last.Seq + p.cfg.StateSync.SeqMargin
}
