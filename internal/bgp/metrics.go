package bgp

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the havpn_bgp_* collectors. The per-neighbor ones are read
// from GoBGP when scraped (collector), so they cost nothing in between.
type metrics struct {
	running prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, s *Speaker) (*metrics, error) {
	m := &metrics{
		running: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "havpn", Subsystem: "bgp", Name: "running",
			Help: "1 while the BGP speaker runs (active node, or always_on)."}),
	}
	if reg == nil {
		return m, nil
	}
	if err := reg.Register(m.running); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("registering bgp metrics: %w", err)
		}
		if g, ok := are.ExistingCollector.(prometheus.Gauge); ok {
			m.running = g
		}
	}
	c := newCollector(s)
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, fmt.Errorf("registering bgp metrics: %w", err)
		}
		// A speaker rebuilt on the same registry (config reload): the
		// old collector keeps reporting the old speaker; replace it.
		reg.Unregister(are.ExistingCollector)
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering bgp metrics: %w", err)
		}
	}
	return m, nil
}

// collector reads the per-neighbor metrics when scraped.
type collector struct {
	s                                   *Speaker
	up, state, received                 *prometheus.Desc
	updatesIn, updatesOut, estab, drops *prometheus.Desc
}

func newCollector(s *Speaker) *collector {
	peer := []string{"peer"}
	return &collector{
		s: s,
		up: prometheus.NewDesc("havpn_bgp_neighbor_up",
			"1 while the session with the neighbor is established.", peer, nil),
		state: prometheus.NewDesc("havpn_bgp_neighbor_state",
			"Session state: 0 stopped, 1 idle, 2 connect, 3 active, 4 opensent, 5 openconfirm, 6 established.", peer, nil),
		received: prometheus.NewDesc("havpn_bgp_prefixes_received",
			"Prefixes received from the neighbor (Adj-RIB-In), before import policy.", peer, nil),
		updatesIn: prometheus.NewDesc("havpn_bgp_updates_received_total",
			"UPDATE messages received from the neighbor in the current run of the speaker.", peer, nil),
		updatesOut: prometheus.NewDesc("havpn_bgp_updates_sent_total",
			"UPDATE messages sent to the neighbor in the current run of the speaker.", peer, nil),
		estab: prometheus.NewDesc("havpn_bgp_neighbor_established_total",
			"Sessions established with the neighbor.", peer, nil),
		drops: prometheus.NewDesc("havpn_bgp_neighbor_drops_total",
			"Established sessions with the neighbor that went down.", peer, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.state, c.received, c.updatesIn, c.updatesOut, c.estab, c.drops} {
		ch <- d
	}
}

// stateNumber is the value of havpn_bgp_neighbor_state for a state name.
func stateNumber(state string) float64 {
	for i, name := range []string{Stopped, "idle", "connect", "active", "opensent", "openconfirm", "established"} {
		if state == name {
			return float64(i)
		}
	}
	return 0
}

// Collect implements prometheus.Collector: it asks GoBGP for the
// neighbors' state (without counting advertised prefixes).
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, n := range c.s.neighbors(false) {
		peer := n.Address.String()
		up := 0.0
		if n.State == "established" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, peer)
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, stateNumber(n.State), peer)
		ch <- prometheus.MustNewConstMetric(c.received, prometheus.GaugeValue, float64(n.PrefixesReceived), peer)
		ch <- prometheus.MustNewConstMetric(c.updatesIn, prometheus.CounterValue, float64(n.UpdatesReceived), peer)
		ch <- prometheus.MustNewConstMetric(c.updatesOut, prometheus.CounterValue, float64(n.UpdatesSent), peer)
		var drops uint64
		if st := c.s.peers[n.Address]; st != nil {
			drops = st.drops.Load()
		}
		ch <- prometheus.MustNewConstMetric(c.estab, prometheus.CounterValue, float64(n.Established), peer)
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(drops), peer)
	}
}
