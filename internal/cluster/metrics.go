package cluster

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the havpn_cluster_* collectors. They exist (and are updated)
// also when no Registerer was given; they are then just not exported.
type metrics struct {
	role         *prometheus.GaugeVec
	transitions  *prometheus.CounterVec
	drops        *prometheus.CounterVec
	lateTimers   prometheus.Counter
	stalls       prometheus.Counter
	peerAlive    *prometheus.GaugeVec
	peerLinkUp   *prometheus.GaugeVec
	linkWarnings *prometheus.CounterVec
	sent         *prometheus.CounterVec
	sendErrors   *prometheus.CounterVec
	received     *prometheus.CounterVec
	pingReach    prometheus.Gauge

	dropC [numDropReasons]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "havpn", "cluster"
	m := &metrics{
		role: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "role",
			Help: "1 for this node's current cluster role, 0 for the others."}, []string{"role"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transitions_total",
			Help: "Role changes of this node, by the role entered."}, []string{"role"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "heartbeat_drops_total",
			Help: "Received heartbeats dropped, by reason (malformed, version, auth, unknown_node, replay, stale, source, queue_full)."}, []string{"reason"}),
		lateTimers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "late_timers_total",
			Help: "Heartbeat ticks that fired more than half a keepalive late."}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "stalls_total",
			Help: "Stalls of this node detected (no tick for deadtime, or the peer's clock ran ahead of ours)."}),
		peerAlive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "peer_alive",
			Help: "1 while a peer is alive (heard on some link within deadtime)."}, []string{"peer"}),
		peerLinkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "peer_link_up",
			Help: "1 while a peer is heard on a link within warntime."}, []string{"peer", "link"}),
		linkWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "link_warnings_total",
			Help: "Times a live peer went silent on one link for warntime."}, []string{"peer", "link"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "heartbeats_sent_total",
			Help: "Heartbeats handed to the OS, per link."}, []string{"link"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "heartbeat_send_errors_total",
			Help: "Heartbeats that could not be sent, per link."}, []string{"link"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "heartbeats_received_total",
			Help: "Authenticated heartbeats received, per link (before sequence checks)."}, []string{"link"}),
		pingReach: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "ping_nodes_reachable",
			Help: "Ping nodes answering."}),
	}
	if reg != nil {
		var err error
		if m.role, err = register(reg, m.role); err != nil {
			return nil, err
		}
		if m.transitions, err = register(reg, m.transitions); err != nil {
			return nil, err
		}
		if m.drops, err = register(reg, m.drops); err != nil {
			return nil, err
		}
		if m.lateTimers, err = register(reg, m.lateTimers); err != nil {
			return nil, err
		}
		if m.stalls, err = register(reg, m.stalls); err != nil {
			return nil, err
		}
		if m.peerAlive, err = register(reg, m.peerAlive); err != nil {
			return nil, err
		}
		if m.peerLinkUp, err = register(reg, m.peerLinkUp); err != nil {
			return nil, err
		}
		if m.linkWarnings, err = register(reg, m.linkWarnings); err != nil {
			return nil, err
		}
		if m.sent, err = register(reg, m.sent); err != nil {
			return nil, err
		}
		if m.sendErrors, err = register(reg, m.sendErrors); err != nil {
			return nil, err
		}
		if m.received, err = register(reg, m.received); err != nil {
			return nil, err
		}
		if m.pingReach, err = register(reg, m.pingReach); err != nil {
			return nil, err
		}
	}
	for r := DropReason(1); r < numDropReasons; r++ {
		m.dropC[r] = m.drops.WithLabelValues(r.String())
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description (a Cluster rebuilt on the same registry).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(T); ok {
				return prev, nil
			}
		}
		return c, fmt.Errorf("registering cluster metrics: %w", err)
	}
	return c, nil
}

func (m *metrics) setRole(r Role) {
	for _, x := range []Role{RoleInit, RoleStandby, RoleActive} {
		v := 0.0
		if x == r {
			v = 1
		}
		m.role.WithLabelValues(x.String()).Set(v)
	}
}
