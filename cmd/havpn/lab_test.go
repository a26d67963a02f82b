package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/havpn/havpn/internal/lab"
	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
)

// TestLabCLI drives `havpn lab` as a user would: up with daemons, status,
// kill/restart, poweroff/poweron, probe, down.
func TestLabCLI(t *testing.T) {
	labtest.RequireRoot(t)
	prefix := labtest.Prefix(t)
	t.Cleanup(func() { lab.Down(prefix) })
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, append([]string{"lab", "--prefix", prefix}, args...)...)
		if code != 0 {
			t.Fatalf("havpn lab %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	must("up")
	if _, errOut, code := runCLI(t, "lab", "--prefix", prefix, "up"); code != exitFailure || !strings.Contains(errOut, "already up") {
		t.Errorf("second lab up: exit %d, %s", code, errOut)
	}
	status := func() []lab.NodeStatus {
		var st []lab.NodeStatus
		if err := json.Unmarshal([]byte(must("status", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	daemons := func() map[string]string {
		m := map[string]string{}
		for _, n := range status() {
			if n.Kind == lab.KindGateway {
				m[n.Node] = n.Daemon
			}
		}
		return m
	}
	st := status()
	if len(st) != len(lab.NodeNames()) {
		t.Errorf("status lists %d nodes, want %d", len(st), len(lab.NodeNames()))
	}
	for _, n := range st {
		if n.EchoPID == 0 {
			t.Errorf("%s: no echo responder", n.Node)
		}
		if n.Kind == lab.KindGateway && (n.Daemon != "running" || !n.Ready) {
			t.Errorf("%s daemon %q ready %v after up, want running and answering", n.Node, n.Daemon, n.Ready)
		}
	}
	if out := must("status"); !strings.Contains(out, "answers") || !strings.Contains(out, "lan0:up") {
		t.Errorf("status table:\n%s", out)
	}

	// Bad input: says what is wrong, changes nothing.
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"up", "--sites", "3"}, exitFailure, "only 2 sites"},
		{[]string{"kill", "s1host"}, exitFailure, "not a gateway"},
		{[]string{"kill"}, exitUsage, "accepts 1 arg"},
		{[]string{"unplug", "s9gw1", "lan0"}, exitFailure, "no node"},
		{[]string{"unplug", "s1gw1", "eth7"}, exitFailure, "no interface"},
		{[]string{"poweroff", "inet"}, exitFailure, "only gateways and hosts"},
		{[]string{"probe", "--from", "s1host", "--to", "300.1.1.1"}, exitUsage, "not an IP address"},
		{[]string{"probe", "--from", "nosuch", "--to", "192.168.1.2"}, exitFailure, "no node"},
		{[]string{"probe", "--to", "192.168.1.2"}, exitUsage, "from"},
		{[]string{"probe", "--from", "s1host", "--to", "192.168.1.2", "--size", "4"}, exitFailure, "size"},
		{[]string{"exec", "nosuch", "--", "true"}, exitFailure, "no node"},
	} {
		_, errOut, code := runCLI(t, append([]string{"lab", "--prefix", prefix}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("havpn lab %v: exit %d %q, want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	if _, errOut, code := runCLI(t, "lab", "--prefix", "nolab-", "status"); code != exitFailure || !strings.Contains(errOut, "no lab is up") {
		t.Errorf("status of a lab that is not up: exit %d %q", code, errOut)
	}
	for _, n := range status() {
		for iface, state := range n.Links {
			if state != "up" {
				t.Errorf("after bad input %s %s is %s", n.Node, iface, state)
			}
		}
	}
	sock := filepath.Join(lab.Dir(prefix), "s1gw1.sock")
	if out := must("exec", "s1gw1", "--", havpnBin(t), "--socket", sock, "status"); !strings.Contains(out, "s1gw1") {
		t.Errorf("status of s1gw1's daemon:\n%s", out)
	}

	must("kill", "s1gw1")
	if d := daemons()["s1gw1"]; d != "dead" {
		t.Errorf("after kill: %q, want dead", d)
	}
	must("restart", "s1gw1")
	if d := daemons()["s1gw1"]; d != "running" {
		t.Errorf("after restart: %q, want running", d)
	}
	must("freeze", "s1gw2")
	if d := daemons()["s1gw2"]; d != "frozen" {
		t.Errorf("after freeze: %q, want frozen", d)
	}
	must("thaw", "s1gw2")

	must("poweroff", "s2gw2")
	if _, errOut, code := runCLI(t, "lab", "--prefix", prefix, "restart", "s2gw2"); code != exitFailure || !strings.Contains(errOut, "powered off") {
		t.Errorf("restart of a powered-off gateway: exit %d %q", code, errOut)
	}
	var res lab.ProbeResult
	out, _, _ := runCLI(t, "lab", "--prefix", prefix, "probe", "--from", "s2host", "--to", "192.168.2.3", "--duration", "200ms", "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Received != 0 {
		t.Errorf("probe to a powered-off gateway: %v, received %d", err, res.Received)
	}
	must("poweron", "s2gw2")
	out = must("probe", "--from", "s2host", "--to", "192.168.2.3", "--duration", "200ms", "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Lost != 0 || res.Sent == 0 {
		t.Errorf("probe after poweron: %v, %+v", err, res)
	}

	out = must("probe", "--from", "s1host", "--to", "192.168.1.3", "--icmp", "--duration", "100ms")
	if !strings.Contains(out, "(icmp every 1ms)") || !strings.Contains(out, "no loss") {
		t.Errorf("probe table:\n%s", out)
	}
	must("down")
	must("down")
	for _, n := range lab.NodeNames() {
		if netnsutil.Exists(prefix + n) {
			t.Errorf("namespace %s%s left after down", prefix, n)
		}
	}
	if _, err := os.Stat(lab.Dir(prefix)); !os.IsNotExist(err) {
		t.Errorf("lab state left after down")
	}
}
