package fib

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the havpn_fib_* collectors; they exist also without a
// Registerer (then unexported).
type metrics struct {
	routes prometheus.Gauge
	stale  prometheus.Gauge
	failed prometheus.Gauge
	ops    *prometheus.CounterVec
	errors *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "havpn", "fib"
	m := &metrics{
		routes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "routes",
			Help: "Routes of havpn's protocol installed in the kernel."}),
		stale: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "stale_routes",
			Help: "Routes adopted from an earlier run and not learned again yet."}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "failed_prefixes",
			Help: "Prefixes whose last kernel change failed (retried on connected changes)."}),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "ops_total",
			Help: "Kernel route changes done, by op (replace, delete)."}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "op_errors_total",
			Help: "Kernel route changes refused, by op (replace, delete)."}, []string{"op"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.routes, err = register(reg, m.routes); err != nil {
		return nil, err
	}
	if m.stale, err = register(reg, m.stale); err != nil {
		return nil, err
	}
	if m.failed, err = register(reg, m.failed); err != nil {
		return nil, err
	}
	if m.ops, err = register(reg, m.ops); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description (a Reconciler rebuilt on the same registry).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(T); ok {
				return prev, nil
			}
		}
		return c, fmt.Errorf("registering fib metrics: %w", err)
	}
	return c, nil
}
