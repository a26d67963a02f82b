package vip

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the VIP collectors, shared by every VIP of a daemon. A nil
// *Metrics records nothing.
type Metrics struct {
	held           *prometheus.GaugeVec
	refreshErrors  *prometheus.CounterVec
	announcements  *prometheus.CounterVec
	announceErrors *prometheus.CounterVec
}

// NewMetrics creates the VIP collectors and registers them on reg; a nil reg
// leaves them unregistered (they still count, nobody scrapes them).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "havpn", Subsystem: "vip", Name: "held",
			Help: "1 while this node holds the virtual IP, 0 otherwise.",
		}, []string{"vip"}),
		refreshErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "havpn", Subsystem: "vip", Name: "refresh_errors_total",
			Help: "Failed lifetime refreshes of a held virtual IP.",
		}, []string{"vip"}),
		announcements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "havpn", Subsystem: "vip", Name: "announcements_total",
			Help: "Gratuitous ARP / unsolicited NA packets sent.",
		}, []string{"vip"}),
		announceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "havpn", Subsystem: "vip", Name: "announce_errors_total",
			Help: "Gratuitous ARP / unsolicited NA packets that could not be sent.",
		}, []string{"vip"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.held, m.refreshErrors, m.announcements, m.announceErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering vip metrics: %w", err)
		}
	}
	return m, nil
}

// vipMetrics are one VIP's children of the vectors; zero value records nothing.
type vipMetrics struct {
	held           prometheus.Gauge
	refreshErrors  prometheus.Counter
	announcements  prometheus.Counter
	announceErrors prometheus.Counter
}

func (m *Metrics) forVIP(label string) vipMetrics {
	if m == nil {
		return vipMetrics{}
	}
	return vipMetrics{
		held:           m.held.WithLabelValues(label),
		refreshErrors:  m.refreshErrors.WithLabelValues(label),
		announcements:  m.announcements.WithLabelValues(label),
		announceErrors: m.announceErrors.WithLabelValues(label),
	}
}

func setGauge(g prometheus.Gauge, v float64) {
	if g != nil {
		g.Set(v)
	}
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}
