package ike

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	n := &testNet{t: t, now: time.Unix(1_800_000_000, 0), engines: map[netip.Addr]*Engine{}}
	ca := pskConfig(addrA, addrB, "@a.example.net", "@b.example.net", true)
	cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
	ea, err := NewEngine(ca, Deps{Send: n.send(addrA), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	eb, err := NewEngine(cb, Deps{Send: n.send(addrB)})
	if err != nil {
		t.Fatal(err)
	}
	n.engines[addrA], n.engines[addrB] = ea, eb
	n.advance(time.Second, 100*time.Millisecond)
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			}
		}
	}
	for name, v := range map[string]float64{
		"havpn_ike_sas": 1, "havpn_ike_child_sas": 1,
		"havpn_ike_established_total{kind=ike}": 1, "havpn_ike_established_total{kind=child}": 1,
		"havpn_ike_messages_total{direction=out}{exchange=IKE_SA_INIT}": 1,
	} {
		if got[name] != v {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], v, got)
		}
	}
	// A second engine on the same registry (restart) must not panic and
	// keeps counting in the same series.
	if _, err := NewEngine(ca, Deps{Send: n.send(addrA), Registerer: reg}); err != nil {
		t.Fatal(err)
	}
}
