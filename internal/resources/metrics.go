package resources

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	state       *prometheus.GaugeVec
	stepSeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "havpn", Subsystem: "resource", Name: "state",
			Help: "Recorded resource state: 0 unknown, 1 stopped, 2 starting, 3 running, 4 stopping, 5 failed.",
		}, []string{"name"}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "havpn", Subsystem: "resource", Name: "step_seconds",
			Help:    "Duration of resource start and stop steps (rollbacks count as stop).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"name", "op"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.state, m.stepSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering resource metrics: %w", err)
		}
	}
	return m, nil
}
