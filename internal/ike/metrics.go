package ike

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus collectors; a nil *metrics records
// nothing.
type metrics struct {
	messages    *prometheus.CounterVec // exchange, direction
	retransmits prometheus.Counter
	dropped     *prometheus.CounterVec // reason
	established *prometheus.CounterVec // kind: ike, child
	failures    *prometheus.CounterVec // reason
	ikeSAs      prometheus.Gauge
	childSAs    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "havpn", Subsystem: "ike", Name: "messages_total",
			Help: "IKE messages by exchange and direction (in, out)."}, []string{"exchange", "direction"}),
		retransmits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "havpn", Subsystem: "ike", Name: "retransmits_total",
			Help: "IKE requests retransmitted."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "havpn", Subsystem: "ike", Name: "dropped_total",
			Help: "Received IKE datagrams dropped, by reason."}, []string{"reason"}),
		established: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "havpn", Subsystem: "ike", Name: "established_total",
			Help: "SAs established (kind ike or child), rekeys included."}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "havpn", Subsystem: "ike", Name: "failures_total",
			Help: "Failed negotiations and lost peers, by reason."}, []string{"reason"}),
		ikeSAs: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "havpn", Subsystem: "ike", Name: "sas",
			Help: "IKE SAs currently established."}),
		childSAs: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "havpn", Subsystem: "ike", Name: "child_sas",
			Help: "Child SAs currently installed."}),
	}
	m.messages = register(reg, m.messages)
	m.retransmits = register(reg, m.retransmits)
	m.dropped = register(reg, m.dropped)
	m.established = register(reg, m.established)
	m.failures = register(reg, m.failures)
	m.ikeSAs = register(reg, m.ikeSAs)
	m.childSAs = register(reg, m.childSAs)
	return m
}

// register registers c, or returns the collector registered before under
// the same name (an engine restarted on the same registry, e.g. after a
// cluster role change, keeps counting in the same series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(fmt.Sprintf("ike: registering metrics: %v", err))
	}
	return c
}

func (m *metrics) message(ex, dir string) {
	if m != nil {
		m.messages.WithLabelValues(ex, dir).Inc()
	}
}

func (m *metrics) retransmit() {
	if m != nil {
		m.retransmits.Inc()
	}
}

func (m *metrics) drop(reason string) {
	if m != nil {
		m.dropped.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) establish(kind string) {
	if m != nil {
		m.established.WithLabelValues(kind).Inc()
	}
}

func (m *metrics) fail(reason string) {
	if m != nil {
		m.failures.WithLabelValues(reason).Inc()
	}
}

func (m *metrics) gauges(ike, child int) {
	if m != nil {
		m.ikeSAs.Set(float64(ike))
		m.childSAs.Set(float64(child))
	}
}
