package linkmon

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	carrier      *prometheus.GaugeVec
	changes      *prometheus.CounterVec
	resubscribes prometheus.Counter
	pollErrors   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		carrier: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "havpn", Subsystem: "linkmon", Name: "carrier",
			Help: "1 while a monitored interface has carrier (IFF_LOWER_UP), 0 otherwise or when absent.",
		}, []string{"iface"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "havpn", Subsystem: "linkmon", Name: "changes_total",
			Help: "Carrier, operational state or presence changes of a monitored interface.",
		}, []string{"iface"}),
		resubscribes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "havpn", Subsystem: "linkmon", Name: "resubscribes_total",
			Help: "Times the netlink link subscription broke and was renewed with a full dump.",
		}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "havpn", Subsystem: "linkmon", Name: "poll_errors_total",
			Help: "Failed direct reads (RTM_GETLINK) of a monitored interface.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.carrier, m.changes, m.resubscribes, m.pollErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering linkmon metrics: %w", err)
		}
	}
	return m, nil
}
