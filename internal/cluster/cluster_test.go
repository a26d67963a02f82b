package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/havpn/havpn/internal/cluster"
	"github.com/havpn/havpn/internal/cluster/clustertest"
	"github.com/havpn/havpn/internal/config"
)

const (
	keepalive = 10 * time.Millisecond
	deadtime  = 30 * time.Millisecond
)

var key = []byte("0123456789abcdef0123")

// testConfig is one member of the pair a (id 1, priority 150) and b (id 2,
// priority 100), with two links lan and hb.
func testConfig(self string) *config.Config {
	ids := map[string]uint8{"a": 1, "b": 2}
	prio := map[string]uint8{"a": 150, "b": 100}
	other := map[string]string{"a": "b", "b": "a"}[self]
	addr := map[string][2]string{"a": {"192.0.2.2", "192.0.2.6"}, "b": {"192.0.2.1", "192.0.2.5"}}[self]
	return &config.Config{
		Version: 1,
		Node:    config.Node{Name: self, Site: "s1"},
		Cluster: &config.Cluster{
			NodeID:   ids[self],
			Priority: prio[self],
			Port:     694,
			Timers: config.Timers{
				Keepalive: config.Duration(keepalive), Warntime: config.Duration(20 * time.Millisecond),
				Deadtime: config.Duration(deadtime), Initdead: config.Duration(60 * time.Millisecond),
			},
			Peers: []config.Peer{{Name: other, NodeID: ids[other]}},
			Links: []config.Link{
				{Name: "lan", Interface: "lan0", Peer: netip.MustParseAddr(addr[0])},
				{Name: "hb", Interface: "hb0", Peer: netip.MustParseAddr(addr[1])},
			},
			Monitor: []string{"wan0"},
		},
	}
}

type node struct {
	name   string
	c      *cluster.Cluster
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	events []cluster.RoleEvent
}

func (n *node) roleEvents() []cluster.RoleEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]cluster.RoleEvent(nil), n.events...)
}

type pair struct {
	t     *testing.T
	wires [2]*clustertest.Wire
	nodes map[string]*node
}

func newPair(t *testing.T) *pair {
	p := &pair{t: t, nodes: map[string]*node{}}
	p.wires[0], p.wires[1] = clustertest.NewWire(), clustertest.NewWire()
	return p
}

// start builds and runs a node; ends are the links to use.
func (p *pair) start(name string, ends []cluster.Link, edit func(*config.Config)) *node {
	p.t.Helper()
	cfg := testConfig(name)
	if edit != nil {
		edit(cfg)
	}
	n := &node{name: name, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	var err error
	n.c, err = cluster.New(cfg, cluster.Options{Key: key, Links: ends, Registerer: n.reg})
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- n.c.Run(ctx) }()
	go func() {
		for ev := range n.c.Events() {
			n.mu.Lock()
			n.events = append(n.events, ev)
			n.mu.Unlock()
		}
	}()
	p.nodes[name] = n
	return n
}

func (p *pair) startA(edit func(*config.Config)) *node {
	return p.start("a", []cluster.Link{p.wires[0].A, p.wires[1].A}, edit)
}

func (p *pair) startB(edit func(*config.Config)) *node {
	return p.start("b", []cluster.Link{p.wires[0].B, p.wires[1].B}, edit)
}

func (p *pair) stop(name string) {
	p.t.Helper()
	n := p.nodes[name]
	n.cancel()
	if err := <-n.done; err != nil {
		p.t.Fatalf("%s: Run: %v", name, err)
	}
	delete(p.nodes, name)
}

func (p *pair) roles() string {
	var s []string
	for _, name := range []string{"a", "b"} {
		if n, ok := p.nodes[name]; ok {
			s = append(s, name+"="+n.c.Role().String())
		}
	}
	return strings.Join(s, " ")
}

func (p *pair) expect(want string) {
	p.t.Helper()
	synctest.Wait()
	if got := p.roles(); got != want {
		p.t.Fatalf("roles %q, want %q", got, want)
	}
}

// waitFor polls every millisecond of fake time; it returns the time taken.
func (p *pair) waitFor(limit time.Duration, cond func() bool) time.Duration {
	p.t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		synctest.Wait()
		if cond() {
			return time.Since(start)
		}
		time.Sleep(time.Millisecond)
	}
	p.t.Fatalf("condition not met within %v; roles %s", limit, p.roles())
	return 0
}

func (p *pair) closeAll() {
	for name, n := range p.nodes {
		n.cancel()
		<-n.done
		delete(p.nodes, name)
	}
}

func TestClusterPair(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, p *pair)
	}{
		{"exactly one active, the higher priority", func(t *testing.T, p *pair) {
			p.expect("a=active b=standby")
			evs := p.nodes["a"].roleEvents()
			if len(evs) != 1 || evs[0].Role != cluster.RoleActive || evs[0].At.Before(evs[0].Detected) {
				t.Fatalf("a's events %+v", evs)
			}
		}},
		{"crash of the active: standby active within deadtime + 2 keepalives", func(t *testing.T, p *pair) {
			p.nodes["a"].c.CrashOnStop()
			p.stop("a")
			took := p.waitFor(time.Second, func() bool { return p.nodes["b"].c.Role() == cluster.RoleActive })
			if took > deadtime+2*keepalive {
				t.Fatalf("b active after %v", took)
			}
			st := p.nodes["b"].c.Status()
			if st.LastTransition == nil || !strings.Contains(st.LastTransition.Reason, "a dead: silent on all links") {
				t.Fatalf("last transition %+v", st.LastTransition)
			}
		}},
		{"clean stop of the active: standby takes over at once", func(t *testing.T, p *pair) {
			p.stop("a")
			took := p.waitFor(time.Second, func() bool { return p.nodes["b"].c.Role() == cluster.RoleActive })
			if took > time.Millisecond {
				t.Fatalf("b active after %v", took)
			}
		}},
		{"one link down: warning, no failover", func(t *testing.T, p *pair) {
			p.wires[1].SetUp(false)
			time.Sleep(200 * time.Millisecond)
			p.expect("a=active b=standby")
			st := p.nodes["b"].c.Status()
			if l := st.Peers[0].Links[1]; !l.Warning || l.Warnings != 1 || l.Up || !st.Peers[0].Links[0].Up {
				t.Fatalf("links %+v", st.Peers[0].Links)
			}
			if v := metricValue(t, p.nodes["b"].reg, "havpn_cluster_peer_link_up", "link", "hb"); v != 0 {
				t.Fatalf("peer_link_up{link=hb} = %v", v)
			}
			if n := len(p.nodes["b"].roleEvents()); n != 1 {
				t.Fatalf("b had %d role events", n)
			}
		}},
		{"both links down: takeover; back: the lower releases at once", func(t *testing.T, p *pair) {
			p.wires[0].SetUp(false)
			p.wires[1].SetUp(false)
			took := p.waitFor(time.Second, func() bool { return p.nodes["b"].c.Role() == cluster.RoleActive })
			if took > deadtime+2*keepalive {
				t.Fatalf("b active after %v", took)
			}
			time.Sleep(50 * time.Millisecond)
			p.expect("a=active b=active")
			p.wires[0].SetUp(true)
			p.wires[1].SetUp(true)
			took = p.waitFor(time.Second, func() bool { return p.nodes["b"].c.Role() == cluster.RoleStandby })
			if took > keepalive+time.Millisecond {
				t.Fatalf("b released %v after the links came back", took)
			}
			p.expect("a=active b=standby")
			evs := p.nodes["a"].roleEvents()
			if last := evs[len(evs)-1]; !last.Reannounce {
				t.Fatalf("a's events %+v", evs)
			}
		}},
		{"standby and takeover", func(t *testing.T, p *pair) {
			if err := p.nodes["a"].c.Standby(); err != nil {
				t.Fatal(err)
			}
			p.expect("a=standby b=active")
			if err := p.nodes["a"].c.Takeover(); err != nil {
				t.Fatal(err)
			}
			p.waitFor(10*time.Millisecond, func() bool { return p.nodes["a"].c.Role() == cluster.RoleActive })
			p.expect("a=active b=standby")
			for _, n := range p.nodes {
				if v := metricValue(t, n.reg, "havpn_cluster_role", "role", "active"); (v == 1) != (n.name == "a") {
					t.Fatalf("%s: havpn_cluster_role{role=active} = %v", n.name, v)
				}
			}
		}},
		{"standby refused without a healthy peer", func(t *testing.T, p *pair) {
			p.nodes["b"].c.SetMaintenance(true)
			synctest.Wait()
			time.Sleep(keepalive)
			err := p.nodes["a"].c.Standby()
			if !errors.Is(err, cluster.ErrNoEligiblePeer) || !strings.Contains(err.Error(), "maintenance") ||
				!strings.HasPrefix(err.Error(), "standby refused: ") {
				t.Fatalf("Standby: %v", err)
			}
			if err := p.nodes["b"].c.Takeover(); !errors.Is(err, cluster.ErrMaintenance) {
				t.Fatalf("Takeover in maintenance: %v", err)
			}
		}},
		{"carrier lost on the active: failover within a millisecond", func(t *testing.T, p *pair) {
			p.nodes["a"].c.SetCarrier("wan0", false)
			took := p.waitFor(time.Second, func() bool { return p.nodes["b"].c.Role() == cluster.RoleActive })
			if took > time.Millisecond {
				t.Fatalf("b active after %v", took)
			}
			p.expect("a=standby b=active")
		}},
		{"forged and garbage heartbeats are dropped and counted", func(t *testing.T, p *pair) {
			forger := cluster.NewCodec([]byte("the wrong key, long enough"))
			m := cluster.Message{NodeID: 1, Role: cluster.RoleActive, Priority: 255, Epoch: 1, Seq: 1}
			b, err := forger.Marshal(nil, &m)
			if err != nil {
				t.Fatal(err)
			}
			p.wires[0].B.Inject(b)
			p.wires[0].B.Inject([]byte("garbage"))
			good := cluster.NewCodec(key)
			m.NodeID = 9
			b, _ = good.Marshal(nil, &m)
			p.wires[0].B.Inject(b)
			synctest.Wait()
			time.Sleep(keepalive)
			st := p.nodes["b"].c.Status()
			if st.Drops["auth"] != 1 || st.Drops["malformed"] != 1 || st.Drops["unknown_node"] != 1 {
				t.Fatalf("drops %v", st.Drops)
			}
			if v := metricValue(t, p.nodes["b"].reg, "havpn_cluster_heartbeat_drops_total", "reason", "auth"); v != 1 {
				t.Fatalf("drops_total{reason=auth} = %v", v)
			}
			p.expect("a=active b=standby")
		}},
		{"restart of the crashed active: rejoins as standby", func(t *testing.T, p *pair) {
			p.nodes["a"].c.CrashOnStop()
			p.stop("a")
			time.Sleep(100 * time.Millisecond)
			p.start("a", []cluster.Link{p.wires[0].ReplaceA(), p.wires[1].ReplaceA()}, nil)
			time.Sleep(100 * time.Millisecond)
			p.expect("a=standby b=active")
			if st := p.nodes["b"].c.Status(); st.Peers[0].Restarts != 1 {
				t.Fatalf("restarts %d", st.Peers[0].Restarts)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPair(t)
				p.startA(nil)
				p.startB(nil)
				time.Sleep(100 * time.Millisecond)
				tc.run(t, p)
				p.closeAll()
			})
		})
	}
}

func TestStatusJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t)
		p.startA(nil)
		p.startB(nil)
		time.Sleep(100 * time.Millisecond)
		b, err := json.Marshal(p.nodes["a"].c.Status())
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"role":"active"`, `"node":"a"`, `"name":"b"`, `"state":"alive"`,
			`"role":"standby"`, `"link":"hb"`, `"keepalive":"10ms"`, `"kind":"pipe"`, `"last_transition":{`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("status JSON lacks %s:\n%s", want, b)
			}
		}
		p.closeAll()
	})
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t)
		n := p.startA(nil)
		time.Sleep(time.Millisecond)
		if err := n.c.Run(context.Background()); !errors.Is(err, cluster.ErrRunning) {
			t.Fatalf("second Run: %v", err)
		}
		p.closeAll()
		if err := n.c.Standby(); !errors.Is(err, cluster.ErrNotRunning) {
			t.Fatalf("Standby after Run: %v", err)
		}
		if _, ok := <-n.c.Events(); ok {
			t.Fatal("events not closed")
		}
	})
}

func TestNew(t *testing.T) {
	if _, err := cluster.New(&config.Config{}, cluster.Options{Key: key}); !errors.Is(err, cluster.ErrNoCluster) {
		t.Fatalf("no cluster section: %v", err)
	}
	if _, err := cluster.New(testConfig("a"), cluster.Options{Key: key, Links: []cluster.Link{clustertest.NewWire().A}}); err == nil {
		t.Fatal("one link for two configured accepted")
	}
	reg := prometheus.NewRegistry()
	for range 2 { // a rebuilt Cluster reuses the registered collectors
		if _, err := cluster.New(testConfig("a"), cluster.Options{Key: key, Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := cluster.New(testConfig("a"), cluster.Options{Key: key})
	if st := c.Status(); st.Role != cluster.RoleInit || st.Node != "a" || len(st.Peers) != 1 {
		t.Fatalf("status before Run: %+v", st)
	}
}

func TestSharedConfigHash(t *testing.T) {
	a, b := testConfig("a"), testConfig("b")
	if cluster.SharedConfigHash(a) != cluster.SharedConfigHash(b) {
		t.Fatal("the two members' shared hashes differ")
	}
	if a.Hash() == b.Hash() {
		t.Fatal("full hashes equal: the test configs do not differ per node")
	}
	b.Cluster.Timers.Deadtime = config.Duration(40 * time.Millisecond)
	if cluster.SharedConfigHash(a) == cluster.SharedConfigHash(b) {
		t.Fatal("a different deadtime gives the same shared hash")
	}
}

// metricValue returns the value of the sample of name whose label has value.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue() + m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}
