package fib_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/fib"
	"github.com/havpn/havpn/internal/fib/fibtest"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	pfx = netip.MustParsePrefix
	adr = netip.MustParseAddr
)

func hops(gws ...string) []fib.NextHop {
	var out []fib.NextHop
	for _, g := range gws {
		out = append(out, fib.NextHop{Gateway: adr(g)})
	}
	return out
}

func ch(p string, gws ...string) fib.Change {
	return fib.Change{Prefix: pfx(p), NextHops: hops(gws...)}
}

func ours(p string, metric uint32, gws ...string) fib.Route {
	return fib.Route{Prefix: pfx(p), NextHops: hops(gws...), Table: 254, Protocol: 186, Metric: metric}
}

var defaultFIB = config.FIB{Table: 254, Protocol: 186, Multipath: true}

func TestReconcilerGolden(t *testing.T) {
	tests := []struct {
		name      string
		cfg       config.FIB
		preload   []fib.Route
		connected []string
		steps     func(r *fib.Reconciler, k *fibtest.Kernel) error
		wantOps   string
		wantTable string
	}{
		{
			name: "add replace withdraw",
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				return errors.Join(
					r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2"), ch("10.2.0.0/16", "172.16.0.2")}),
					r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.6")}),
					r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.6")}), // no change: no op
					r.Update([]fib.Change{{Prefix: pfx("10.2.0.0/16")}}),
					r.Update([]fib.Change{{Prefix: pfx("10.9.0.0/16")}}), // withdraw of unknown: no op
				)
			},
			wantOps: `replace 10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2
replace 10.2.0.0/16 table 254 proto 186 metric 20 via 172.16.0.2
replace 10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.6
delete 10.2.0.0/16 table 254 proto 186 metric 20`,
			wantTable: `10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.6`,
		},
		{
			name: "ecmp sorted and deduplicated",
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				return errors.Join(
					r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.6", "172.16.0.2", "172.16.0.6")}),
					r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2", "172.16.0.6")}), // same set
					r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2")}),
				)
			},
			wantOps: `replace 10.1.0.0/24 table 254 proto 186 metric 20 nexthop via 172.16.0.2 nexthop via 172.16.0.6
replace 10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
			wantTable: `10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
		},
		{
			name: "multipath off keeps the first (best) next hop",
			cfg:  config.FIB{Table: 100, Protocol: 200},
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				return r.Update([]fib.Change{ch("2001:db8:1::/48", "2001:db8::6", "2001:db8::2")})
			},
			wantOps:   `replace 2001:db8:1::/48 table 100 proto 200 metric 20 via 2001:db8::6`,
			wantTable: `2001:db8:1::/48 table 100 proto 200 metric 20 via 2001:db8::6`,
		},
		{
			name: "same prefix twice in one update is one op; host bits masked",
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				return r.Update([]fib.Change{ch("10.1.0.7/24", "172.16.0.2"), ch("10.3.0.0/24", "172.16.0.2"), ch("10.1.0.0/24", "172.16.0.6")})
			},
			wantOps: `replace 10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.6
replace 10.3.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
			wantTable: `10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.6
10.3.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
		},
		{
			name:      "connected prefix never installed",
			connected: []string{"192.168.1.0/24", "192.168.1.2/32"},
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				return r.Update([]fib.Change{ch("192.168.1.0/24", "172.16.0.2"), ch("192.168.1.2/32", "172.16.0.2"), ch("192.168.2.0/24", "172.16.0.2")})
			},
			wantOps:   `replace 192.168.2.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
			wantTable: `192.168.2.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
		},
		{
			name: "prefix becomes connected, then not",
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				err1 := r.Update([]fib.Change{ch("192.168.2.0/24", "172.16.0.2")})
				k.SetConnected(pfx("192.168.2.0/24"))
				err2 := r.RefreshConnected()
				k.SetConnected()
				err3 := r.RefreshConnected()
				return errors.Join(err1, err2, err3)
			},
			wantOps: `replace 192.168.2.0/24 table 254 proto 186 metric 20 via 172.16.0.2
delete 192.168.2.0/24 table 254 proto 186 metric 20
replace 192.168.2.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
			wantTable: `192.168.2.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
		},
		{
			name: "adopt keeps same routes, removes other metrics and connected, sweep removes stale",
			preload: []fib.Route{
				ours("10.1.0.0/24", 20, "172.16.0.2"),
				ours("10.1.0.0/24", 30, "172.16.0.2"), // an earlier run with another metric
				ours("10.2.0.0/24", 20, "172.16.0.2"), // stale: not learned again
				ours("10.3.0.0/24", 20, "172.16.0.2"), // learned again with another next hop
				ours("192.168.1.0/24", 20, "172.16.0.2"),
				{Prefix: pfx("10.4.0.0/24"), NextHops: hops("172.16.0.9"), Table: 254, Protocol: 4}, // static, not ours
				{Prefix: pfx("10.5.0.0/24"), NextHops: hops("172.16.0.9"), Table: 100, Protocol: 186},
			},
			connected: []string{"192.168.1.0/24"},
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				err1 := r.Adopt()
				err2 := r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2"), ch("10.3.0.0/24", "172.16.0.6")})
				n, err3 := r.Sweep()
				if n != 1 {
					return errors.New("sweep removed a wrong number of routes")
				}
				return errors.Join(err1, err2, err3)
			},
			wantOps: `delete 10.1.0.0/24 table 254 proto 186 metric 30
delete 192.168.1.0/24 table 254 proto 186 metric 20
replace 10.3.0.0/24 table 254 proto 186 metric 20 via 172.16.0.6
delete 10.2.0.0/24 table 254 proto 186 metric 20`,
			wantTable: `10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2
10.3.0.0/24 table 254 proto 186 metric 20 via 172.16.0.6
10.4.0.0/24 table 254 proto 4 metric 0 via 172.16.0.9
10.5.0.0/24 table 100 proto 186 metric 0 via 172.16.0.9`,
		},
		{
			name: "flush removes installed and adopted routes only",
			preload: []fib.Route{
				ours("10.2.0.0/24", 20, "172.16.0.2"),
				{Prefix: pfx("10.4.0.0/24"), NextHops: hops("172.16.0.9"), Table: 254, Protocol: 4},
			},
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				return errors.Join(r.Adopt(), r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2")}), r.Flush())
			},
			wantOps: `replace 10.1.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2
delete 10.1.0.0/24 table 254 proto 186 metric 20
delete 10.2.0.0/24 table 254 proto 186 metric 20`,
			wantTable: `10.4.0.0/24 table 254 proto 4 metric 0 via 172.16.0.9`,
		},
		{
			name: "refused route retried",
			steps: func(r *fib.Reconciler, k *fibtest.Kernel) error {
				k.Fail(pfx("10.1.0.0/24"), syscall.ENETUNREACH)
				if err := r.Update([]fib.Change{ch("10.1.0.0/24", "192.0.2.99"), ch("10.2.0.0/24", "172.16.0.2")}); err == nil {
					return errors.New("refused route gave no error")
				}
				if s := r.Stats(); s.Failed != 1 || s.Installed != 1 {
					return errors.New("stats after a refused route are wrong")
				}
				k.Fail(pfx("10.1.0.0/24"), nil)
				return r.Retry()
			},
			wantOps: `replace 10.1.0.0/24 table 254 proto 186 metric 20 via 192.0.2.99 => network is unreachable
replace 10.2.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2
replace 10.1.0.0/24 table 254 proto 186 metric 20 via 192.0.2.99`,
			wantTable: `10.1.0.0/24 table 254 proto 186 metric 20 via 192.0.2.99
10.2.0.0/24 table 254 proto 186 metric 20 via 172.16.0.2`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := fibtest.New()
			k.Preload(tc.preload...)
			var conn []netip.Prefix
			for _, c := range tc.connected {
				conn = append(conn, pfx(c))
			}
			k.SetConnected(conn...)
			cfg := tc.cfg
			if cfg.Table == 0 {
				cfg = defaultFIB
			}
			r, err := fib.New(k, cfg, fib.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.RefreshConnected(); err != nil {
				t.Fatal(err)
			}
			if err := tc.steps(r, k); err != nil {
				t.Fatal(err)
			}
			if got := k.Ops(); got != tc.wantOps {
				t.Errorf("ops:\n%s\nwant:\n%s", got, tc.wantOps)
			}
			if got := k.Table(); got != tc.wantTable {
				t.Errorf("table:\n%s\nwant:\n%s", got, tc.wantTable)
			}
			// The reconciler's view agrees with the fake's table (for our
			// table and protocol).
			var lines []string
			for _, rt := range r.Routes() {
				lines = append(lines, rt.String())
			}
			for _, l := range strings.Split(tc.wantTable, "\n") {
				if strings.Contains(l, " table "+itoa(cfg.Table)+" proto "+itoa(uint32(cfg.Protocol))+" metric 20") {
					if !contains(lines, l) {
						t.Errorf("Routes() = %q, misses %q", lines, l)
					}
				}
			}
		})
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestRunRefreshesOnConnectedChange(t *testing.T) {
	k := fibtest.New()
	r, err := fib.New(k, defaultFIB, fib.Options{Debounce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Update([]fib.Change{ch("192.168.2.0/24", "172.16.0.2")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.SetConnected(pfx("192.168.2.0/24")) // also wakes Run once it watches
		if _, ok := r.Installed(pfx("192.168.2.0/24")); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("route for a newly connected prefix was not removed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	k := fibtest.New()
	r, err := fib.New(k, defaultFIB, fib.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// A second Reconciler on the same registry shares the collectors.
	if _, err := fib.New(k, defaultFIB, fib.Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	k.Fail(pfx("10.9.0.0/24"), syscall.ENETUNREACH)
	_ = r.Update([]fib.Change{ch("10.1.0.0/24", "172.16.0.2"), ch("10.2.0.0/24", "172.16.0.2"), ch("10.9.0.0/24", "172.16.0.2")})
	got := gather(t, reg)
	for name, want := range map[string]float64{
		"havpn_fib_routes":                        2,
		"havpn_fib_failed_prefixes":               1,
		`havpn_fib_op_errors_total{op="replace"}`: 1,
		`havpn_fib_ops_total{op="replace"}`:       2,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
}

// gather returns every sample of reg as name{labels} -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
				}
				name += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestNewRejectsZeroTable(t *testing.T) {
	if _, err := fib.New(fibtest.New(), config.FIB{Protocol: 186}, fib.Options{}); err == nil {
		t.Fatal("table 0 accepted")
	}
}

func fibCfg(table uint32, proto uint8) config.FIB {
	return config.FIB{Table: table, Protocol: proto, Multipath: true}
}

func netipPrefix(a [4]byte, bits int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4(a), bits)
}

// TestInherit: routes handed over by the old active go into the kernel
// (not over a connected prefix), Adopt takes them as stale, learning them
// again keeps them, and Sweep removes the others.
func TestInherit(t *testing.T) {
	k := fibtest.New()
	k.SetConnected(pfx("192.168.1.0/24"))
	r, err := fib.New(k, defaultFIB, fib.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hop := []fib.NextHop{{Gateway: netip.MustParseAddr("172.16.0.2"), Link: 7}}
	n, err := r.Inherit([]fib.Route{
		{Prefix: pfx("192.168.2.0/24"), NextHops: hop},
		{Prefix: pfx("10.20.0.0/16"), NextHops: hop},
		{Prefix: pfx("192.168.1.0/24"), NextHops: hop}, // connected: skipped
		{Prefix: pfx("10.30.0.0/16")},                  // no next hop: skipped
	})
	if err != nil || n != 2 {
		t.Fatalf("Inherit: %d, %v; want 2 routes", n, err)
	}
	if got, _ := k.Routes(defaultFIB.Table, defaultFIB.Protocol); len(got) != 2 {
		t.Fatalf("kernel holds %v, want 2 routes of ours", got)
	}
	if err := r.Adopt(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Installed != 2 || st.Stale != 2 {
		t.Fatalf("after Adopt: %+v, want 2 installed, 2 stale", st)
	}
	if err := r.Update([]fib.Change{ch("192.168.2.0/24", "172.16.0.2")}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Sweep(); n != 1 || err != nil {
		t.Fatalf("Sweep: %d, %v; want the one route not learned again", n, err)
	}
	if _, ok := r.Installed(pfx("192.168.2.0/24")); !ok {
		t.Error("the route learned again was swept")
	}
	if n, err := r.Inherit([]fib.Route{{Prefix: pfx("192.168.2.0/24"), NextHops: hop}}); n != 0 || err != nil {
		t.Errorf("Inherit over a route we hold: %d, %v; want 0", n, err)
	}
}
