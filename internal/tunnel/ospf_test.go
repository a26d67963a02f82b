package tunnel_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
)

// TestLabOSPF runs FRR's zebra and ospfd on s1gw1 and s2gw1 with OSPF on
// the tunnel interfaces: OSPF hellos are multicast (224.0.0.5), so a Full
// adjacency shows the tunnel carries multicast, which plain IPsec policies
// of the seed could not.
func TestLabOSPF(t *testing.T) {
	labtest.RequireRoot(t)
	vtysh := labtest.RequireCommand(t, "vtysh")
	for _, d := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/ospfd"} {
		if _, err := os.Stat(d); err != nil {
			labtest.RequireCommand(t, d) // skips, or fails under HAVPN_REQUIRE_ROOT=1
		}
	}
	frr, err := user.Lookup("frr")
	if err != nil {
		labtest.Missing(t, "no frr user (the frr package makes it): %v", err)
	}
	uid, _ := strconv.Atoi(frr.Uid)
	gid, _ := strconv.Atoi(frr.Gid)
	lt := upLabTunnels(t)

	base, err := os.MkdirTemp("", "havpn-ospf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	type node struct {
		gw, iface, rid, run string
	}
	nodes := []node{
		{"s1gw1", lt.c1.Name, "172.16.0.1", filepath.Join(base, "s1gw1")},
		{"s2gw1", lt.c2.Name, "172.16.0.2", filepath.Join(base, "s2gw1")},
	}
	for _, n := range nodes {
		if err := os.Mkdir(n.run, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(n.run, uid, gid); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf(`frr defaults traditional
hostname %s
log file %s/ospfd.log informational
interface %s
 ip ospf network point-to-point
 ip ospf hello-interval 1
 ip ospf dead-interval 4
router ospf
 ospf router-id %s
 network 172.16.0.0/30 area 0
`, n.gw, n.run, n.iface, n.rid)
		files := map[string]string{"zebra.conf": "hostname " + n.gw + "\n", "ospfd.conf": conf}
		for f, c := range files {
			p := filepath.Join(n.run, f)
			if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chown(p, uid, gid)
		}
		ns, _ := lt.l.NS(n.gw)
		for _, d := range []string{"zebra", "ospfd"} {
			cmd := exec.Command("/usr/lib/frr/"+d, "-u", "frr", "-g", "frr",
				"-z", filepath.Join(n.run, "zserv.api"), "--vty_socket", n.run,
				"-i", filepath.Join(n.run, d+".pid"), "-f", filepath.Join(n.run, d+".conf"), "-P", "0")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := netnsutil.Start(ns, cmd); err != nil {
				t.Fatalf("starting %s on %s: %v", d, n.gw, err)
			}
			waitDone := make(chan struct{})
			go func() { cmd.Wait(); close(waitDone) }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-waitDone
				if t.Failed() {
					t.Logf("%s on %s output:\n%s", d, n.gw, out.String())
				}
			})
			if d == "zebra" {
				deadline := time.Now().Add(10 * time.Second)
				for {
					if _, err := os.Stat(filepath.Join(n.run, "zserv.api")); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("zebra on %s did not start: %s", n.gw, out.String())
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		var last string
		for {
			out, _ := exec.CommandContext(ctx, vtysh, "--vty_socket", n.run, "-c", "show ip ospf neighbor").CombinedOutput()
			last = string(out)
			if strings.Contains(last, "Full") {
				t.Logf("%s:\n%s", n.gw, strings.TrimSpace(last))
				break
			}
			if ctx.Err() != nil {
				log, _ := os.ReadFile(filepath.Join(n.run, "ospfd.log"))
				t.Fatalf("no Full adjacency on %s: %s\nospfd.log:\n%s\nstatus: %+v", n.gw, last, log, lt.m1.Status())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}
