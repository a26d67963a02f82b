package tunnel

import "github.com/prometheus/client_golang/prometheus"

// collector exposes a Manager's counters as havpn_tunnel_* metrics, read
// at scrape time from the atomics the loops update.
type collector struct {
	m *Manager
	d descs
}

// descs are the metric descriptions, made once per collector.
type descs struct {
	packets, bytes, drops, up, keepalives, icmp, changes, sas, sock *prometheus.Desc
}

func newDescs() descs {
	return descs{
		packets: prometheus.NewDesc("havpn_tunnel_packets_total",
			"Inner packets through the tunnel by direction (tx: sent to the peer, rx: written to the interface).", []string{"tunnel", "dir"}, nil),
		bytes: prometheus.NewDesc("havpn_tunnel_bytes_total",
			"Inner bytes through the tunnel by direction.", []string{"tunnel", "dir"}, nil),
		drops: prometheus.NewDesc("havpn_tunnel_drops_total",
			"Packets dropped by direction and reason.", []string{"tunnel", "dir", "reason"}, nil),
		up: prometheus.NewDesc("havpn_tunnel_up",
			"1 when the peer was heard from within the dead interval.", []string{"tunnel"}, nil),
		keepalives: prometheus.NewDesc("havpn_tunnel_keepalives_total",
			"ESP dummy packets (next header 59) sent and received.", []string{"tunnel", "dir"}, nil),
		icmp: prometheus.NewDesc("havpn_tunnel_icmp_errors_total",
			"PMTU ICMP errors written into the interface (sent) or suppressed by the rate limit (limited).", []string{"tunnel", "result"}, nil),
		changes: prometheus.NewDesc("havpn_tunnel_state_changes_total",
			"Up/down liveness transitions.", []string{"tunnel"}, nil),
		sas: prometheus.NewDesc("havpn_tunnel_sas",
			"Installed ESP SAs by direction.", []string{"tunnel", "dir"}, nil),
		sock: prometheus.NewDesc("havpn_tunnel_socket_packets_total",
			"Datagrams on a shared socket by kind (esp, ike, ike_dropped, nat_keepalive, invalid, no_sa, truncated) and read errors.", []string{"local", "kind"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.d.packets, c.d.bytes, c.d.drops, c.d.up, c.d.keepalives, c.d.icmp, c.d.changes, c.d.sas, c.d.sock} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	inSAs := map[*Tunnel]int{}
	for _, in := range *c.m.inbound.Load() {
		inSAs[in.t]++
	}
	for _, t := range c.m.tunnels {
		n := t.name
		counter(c.d.packets, t.c.txPackets.Load(), n, "tx")
		counter(c.d.packets, t.c.rxPackets.Load(), n, "rx")
		counter(c.d.bytes, t.c.txBytes.Load(), n, "tx")
		counter(c.d.bytes, t.c.rxBytes.Load(), n, "rx")
		for i := range t.c.in {
			counter(c.d.drops, t.c.in[i].Load(), n, "rx", inReasonNames[i])
		}
		for i := range t.c.out {
			counter(c.d.drops, t.c.out[i].Load(), n, "tx", outReasonNames[i])
		}
		counter(c.d.keepalives, t.c.kaSent.Load(), n, "tx")
		counter(c.d.keepalives, t.c.kaRecv.Load(), n, "rx")
		counter(c.d.icmp, t.c.icmpSent.Load(), n, "sent")
		counter(c.d.icmp, t.c.icmpLimited.Load(), n, "limited")
		counter(c.d.changes, t.c.stateChanges.Load(), n)
		up := 0.0
		if t.Up() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.d.up, prometheus.GaugeValue, up, n)
		c.m.saMu.Lock()
		outs := len(t.pending)
		c.m.saMu.Unlock()
		if t.out.Load() != nil {
			outs++
		}
		ch <- prometheus.MustNewConstMetric(c.d.sas, prometheus.GaugeValue, float64(inSAs[t]), n, "in")
		ch <- prometheus.MustNewConstMetric(c.d.sas, prometheus.GaugeValue, float64(outs), n, "out")
	}
	for _, s := range c.m.socks {
		l := s.local.String()
		counter(c.d.sock, s.c.esp.Load(), l, "esp")
		counter(c.d.sock, s.c.ike.Load(), l, "ike")
		counter(c.d.sock, s.c.ikeDropped.Load(), l, "ike_dropped")
		counter(c.d.sock, s.c.natKeepalive.Load(), l, "nat_keepalive")
		counter(c.d.sock, s.c.invalid.Load(), l, "invalid")
		counter(c.d.sock, s.c.noSA.Load(), l, "no_sa")
		counter(c.d.sock, s.c.truncated.Load(), l, "truncated")
		counter(c.d.sock, s.c.readErrors.Load(), l, "read_error")
	}
}
