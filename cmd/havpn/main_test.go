package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab/labtest"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// havpnBin builds the havpn binary once per test run.
func havpnBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "havpn-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "havpn")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// runCLI runs havpn with args and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(havpnBin(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("running havpn %v: %v", args, err)
	return "", "", -1
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nnode:\n  name: gw1\n  colour: red\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"version", []string{"version"}, exitOK, "havpn"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"bad flag", []string{"status", "--bogus"}, exitUsage, "unknown flag"},
		{"bad output", []string{"-o", "xml", "version"}, exitUsage, "table or json"},
		{"extra args", []string{"status", "x"}, exitUsage, "unknown command"},
		{"no daemon", []string{"--socket", filepath.Join(dir, "none.sock"), "status"}, exitNoDaemon, "none.sock"},
		{"invalid config", []string{"config", "validate", bad}, exitFailure, "bad.yaml:4:3: node.colour"},
		{"missing config", []string{"config", "validate", filepath.Join(dir, "nope.yaml")}, exitFailure, "nope.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if !strings.Contains(out+errOut, tc.want) {
				t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", tc.want, out, errOut)
			}
		})
	}
}

func TestConfigValidateJSON(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nnode:\n  name: gw1\n  colour: red\n"), 0o600)
	out, _, code := runCLI(t, "config", "validate", "-o", "json", bad)
	if code != exitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	var v struct {
		Valid  bool `json:"valid"`
		Errors []struct {
			Line  int    `json:"line"`
			Field string `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if v.Valid || len(v.Errors) != 1 || v.Errors[0].Line != 4 || v.Errors[0].Field != "node.colour" {
		t.Errorf("got %+v", v)
	}
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := runCLI(t, "man", dir); code != 0 {
		t.Fatalf("man: exit %d: %s", code, errOut)
	}
	for _, page := range []string{"havpn.8", "havpn-status.8", "havpn-config-validate.8", "havpn-run.8"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !bytes.Contains(b, []byte(".TH")) {
			t.Errorf("man page %s missing or not troff: %v", page, err)
		}
	}
}

func TestCompletion(t *testing.T) {
	out, _, code := runCLI(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_havpn") {
		t.Errorf("bash completion: exit %d, %.200s", code, out)
	}
}

// TestDaemonInNamespace runs the daemon from the shipped minimal example in
// a fresh network namespace: it answers status, reloads on SIGHUP, rejects
// a broken reload and keeps running, and exits 0 on SIGTERM.
func TestDaemonInNamespace(t *testing.T) {
	labtest.RequireRoot(t)
	ns := labtest.NewNetNS(t, labtest.Prefix(t)+"gw")
	dir := t.TempDir()
	sock := filepath.Join(dir, "havpn.sock")
	example, err := os.ReadFile("../../examples/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	addVeth(t, ns, "v0", "v1")
	cfgText := string(example) + fmt.Sprintf("log:\n  level: info\ncontrol:\n  socket: %s\nmetrics:\n  listen: 127.0.0.1:9740\n", sock) +
		"resources:\n  - name: lanvip\n    type: vip\n    address: 192.0.2.1/24\n    interface: v0\n" +
		"bgp:\n  asn: 65000\n  router_id: 192.0.2.1\n  always_on: true\n  networks: [10.99.0.0/16]\n"
	cfgPath := filepath.Join(dir, "havpn.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(havpnBin(t), "run", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := netnsutil.Start(ns, cmd); err != nil {
		t.Fatalf("starting daemon in %s: %v", ns, err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("daemon log:\n%s", b)
		}
	})

	status := func() (map[string]any, int) {
		out, _, code := runCLI(t, "--socket", sock, "status", "-o", "json")
		var v map[string]any
		json.Unmarshal([]byte(out), &v)
		return v, code
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, code := status(); code == 0 {
			if v["node"] == nil || v["node"] == "" {
				t.Fatalf("status has no node: %v", v)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon did not answer status within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, _, code := runCLI(t, "--socket", sock, "status"); code != 0 || !strings.Contains(out, "lanvip") {
		t.Errorf("status table: exit %d:\n%s", code, out)
	}
	// Standalone: the resource group starts at once, so the VIP is there
	// (status answers a moment before the group has started).
	for deadline := time.Now().Add(2 * time.Second); !hasAddr(t, ns, "v0", "192.0.2.1"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("standalone daemon did not add its VIP 192.0.2.1 to v0 within 2s")
		}
	}

	// bgp.always_on: the speaker runs without a cluster or resource.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _, code := runCLI(t, "--socket", sock, "routes", "-o", "json")
		if code == 0 && strings.Contains(out, `"running": true`) && strings.Contains(out, `"prefix": "10.99.0.0/16"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("havpn routes with bgp.always_on: exit %d:\n%s", code, out)
		}
	}

	reloads := func() float64 {
		v, _ := status()
		c, _ := v["config"].(map[string]any)
		n, _ := c["reloads"].(float64)
		return n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	os.WriteFile(cfgPath, []byte(strings.Replace(cfgText, "level: info", "level: debug", 1)+"\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("a reload after SIGHUP", func() bool { return reloads() == 1 })

	os.WriteFile(cfgPath, []byte(cfgText+"tunnels: 7\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("the broken reload to be logged", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "config reload rejected")
	})
	if v, code := status(); code != 0 || reloads() != 1 {
		t.Fatalf("after a broken reload: exit %d, status %v", code, v)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("daemon exit after SIGTERM: %v, want status 0", waitErr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit within 10s of SIGTERM")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind after exit: %v", err)
	}
	if hasAddr(t, ns, "v0", "192.0.2.1") {
		t.Error("VIP left on v0 after SIGTERM: the drain did not release it")
	}
}

// addVeth makes a veth pair inside ns, both ends up.
func addVeth(t *testing.T, ns, a, b string) {
	t.Helper()
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{a, b} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

func hasAddr(t *testing.T, ns, iface, ip string) bool {
	t.Helper()
	h, err := netnsutil.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IP.String() == ip {
			return true
		}
	}
	return false
}
