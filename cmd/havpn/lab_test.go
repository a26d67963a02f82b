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
	daemons := func() map[string]string {
		var st []lab.NodeStatus
		if err := json.Unmarshal([]byte(must("status", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, n := range st {
			if n.Kind == lab.KindGateway {
				m[n.Node] = n.Daemon
			}
		}
		return m
	}
	for gw, state := range daemons() {
		if state != "running" {
			t.Errorf("%s daemon %q after up, want running", gw, state)
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

	if _, errOut, code := runCLI(t, "lab", "--prefix", prefix, "unplug", "s1gw1", "eth7"); code != exitFailure || !strings.Contains(errOut, "no interface") {
		t.Errorf("unplug of a missing interface: exit %d %s", code, errOut)
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
