package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// examplesTree copies ../../examples into a temporary directory and sets
// the secret files (everything in a keys directory) to 0600, as the
// examples README tells users to do after a checkout.
func examplesTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, filepath.Join("..", "..", "examples"), dir)
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Base(filepath.Dir(p)) != "keys" {
			return err
		}
		return os.Chmod(p, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestExamples validates every shipped example config.
func TestExamples(t *testing.T) {
	dir := examplesTree(t)
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"minimal.yaml", "seed/s1gw1.yaml", "lab/s1gw1.yaml", "lab/s1gw2.yaml", "lab/s2gw1.yaml", "lab/s2gw2.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("example %s is missing: %v", want, err)
		}
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		t.Run(rel, func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Errorf("%v", strings.ReplaceAll(err.Error(), dir+"/", ""))
			}
		})
	}
}

// TestExampleSeed checks that the seed example says what the seed did.
func TestExampleSeed(t *testing.T) {
	c, err := Load(filepath.Join(examplesTree(t), "seed", "s1gw1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if k, d := c.Cluster.Timers.Keepalive.String(), c.Cluster.Timers.Deadtime.String(); k != "2s" || d != "10s" {
		t.Errorf("keepalive %s, deadtime %s; the seed has 2s and 10s", k, d)
	}
	var types []string
	for _, r := range c.Resources {
		types = append(types, string(r.Type))
	}
	if got := strings.Join(types, " "); got != "vip vip ike tunnel bgp" {
		t.Errorf("resource order %q; the seed's haresources is vip vip ipsec gre bgpd", got)
	}
	b := c.BGP
	if b == nil || b.ASN != 65432 || b.RouterID.String() != "172.16.0.1" || len(b.Neighbors) != 1 ||
		b.Neighbors[0].Address.String() != "172.16.0.2" || b.Neighbors[0].RemoteAS != 65432 || !b.Neighbors[0].NextHopSelf {
		t.Errorf("bgp %+v is not the seed's bgpd.conf", b)
	}
	if b != nil && (len(b.Networks) != 1 || b.Networks[0].String() != "172.16.0.0/30" || len(b.Redistribute) != 3) {
		t.Errorf("bgp networks %v, redistribute %v: the seed has 172.16.0.0/30 and kernel, connected, static", b.Networks, b.Redistribute)
	}
	if tun := c.Tunnels[0]; tun.Address.String() != "172.16.0.1/30" || tun.PeerAddress.String() != "172.16.0.2" {
		t.Errorf("tunnel %s %s, the seed has 172.16.0.1 to 172.16.0.2", tun.Address, tun.PeerAddress)
	}
}

// TestExampleLab checks that the four lab configs fit together: the two
// gateways of a site differ in node id and priority and name each other,
// share key, VIPs and tunnel; the two sites' tunnels mirror each other.
func TestExampleLab(t *testing.T) {
	dir := examplesTree(t)
	cfg := map[string]*Config{}
	for _, n := range []string{"s1gw1", "s1gw2", "s2gw1", "s2gw2"} {
		c, err := Load(filepath.Join(dir, "lab", n+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Node.Name != n {
			t.Errorf("lab/%s.yaml has node.name %q", n, c.Node.Name)
		}
		cfg[n] = c
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, site := range []string{"s1", "s2"} {
		a, b := cfg[site+"gw1"], cfg[site+"gw2"]
		if a.Cluster.NodeID == b.Cluster.NodeID || a.Cluster.Priority == b.Cluster.Priority {
			t.Errorf("%s: node ids %d/%d and priorities %d/%d must differ", site, a.Cluster.NodeID, b.Cluster.NodeID, a.Cluster.Priority, b.Cluster.Priority)
		}
		for _, p := range [][2]*Config{{a, b}, {b, a}} {
			me, other := p[0], p[1]
			if len(me.Cluster.Peers) != 1 || me.Cluster.Peers[0].Name != other.Node.Name || me.Cluster.Peers[0].NodeID != other.Cluster.NodeID {
				t.Errorf("%s: peers %+v do not name %s (node_id %d)", me.Node.Name, me.Cluster.Peers, other.Node.Name, other.Cluster.NodeID)
			}
		}
		if !bytes.Equal(read(a.Cluster.AuthKeyFile), read(b.Cluster.AuthKeyFile)) {
			t.Errorf("%s: the two gateways have different cluster keys", site)
		}
		if !sameExceptNode(t, a, b) {
			t.Errorf("%s: the gateways differ in more than node, cluster peer/ids/links and control socket", site)
		}
	}
	s1, s2 := cfg["s1gw1"].Tunnels[0], cfg["s2gw1"].Tunnels[0]
	if s1.Local != s2.Remote || s1.Remote != s2.Local || s1.Address.Addr() != s2.PeerAddress || s1.PeerAddress != s2.Address.Addr() {
		t.Errorf("tunnels do not mirror each other:\n%+v\n%+v", s1, s2)
	}
	if s1.Manual.Outbound.SPI != s2.Manual.Inbound.SPI || s1.Manual.Inbound.SPI != s2.Manual.Outbound.SPI {
		t.Errorf("SPIs do not mirror: %+v / %+v", s1.Manual, s2.Manual)
	}
	if !bytes.Equal(read(s1.Manual.Outbound.KeyFile), read(s2.Manual.Inbound.KeyFile)) ||
		!bytes.Equal(read(s1.Manual.Inbound.KeyFile), read(s2.Manual.Outbound.KeyFile)) {
		t.Error("SA keys do not mirror")
	}
	if n1, n2 := cfg["s1gw1"].BGP.Neighbors[0], cfg["s2gw1"].BGP.Neighbors[0]; n1.Address != s2.Address.Addr() || n2.Address != s1.Address.Addr() {
		t.Errorf("BGP neighbors %s, %s are not the tunnel's other ends", n1.Address, n2.Address)
	}
}

// sameExceptNode reports whether two gateways of one site have the same
// effective config apart from what is per gateway.
func sameExceptNode(t *testing.T, a, b *Config) bool {
	t.Helper()
	norm := func(c *Config) string {
		cp := *c
		cl := *c.Cluster
		cp.Cluster = &cl
		cp.Node.Name = ""
		cp.Control.Socket = ""
		cl.NodeID, cl.Priority, cl.Peers, cl.Links = 0, 0, nil, nil
		out, err := cp.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	return norm(a) == norm(b)
}

// TestExampleSecretMode checks that an example whose key file group and
// other can read (as after a plain git checkout) is rejected, naming the
// field and the mode.
func TestExampleSecretMode(t *testing.T) {
	dir := examplesTree(t)
	key := filepath.Join(dir, "lab", "keys", "site1-cluster.key")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(filepath.Join(dir, "lab", "s1gw1.yaml"))
	errs := Errors(err)
	if len(errs) != 1 {
		t.Fatalf("want one error, got %v", err)
	}
	e := errs[0]
	if e.Field != "cluster.auth_key_file" || !strings.Contains(e.Msg, "mode 0644 is readable by group/other; chmod 600 it") || e.Line == 0 {
		t.Errorf("error %q does not name the field, line and mode", e)
	}
	if !errors.Is(func() error { _, err := ReadSecret(key); return err }(), ErrSecretMode) {
		t.Error("ReadSecret accepts the 0644 key")
	}
}

// TestDocs keeps docs/CONFIG.md true to the code: its seed example is the
// seed example file (same hash), and it names every field of the schema.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := examplesTree(t)
	_, block, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("docs/CONFIG.md has no yaml block")
	}
	fromDoc, err := Parse(filepath.Join(dir, "seed", "from-doc.yaml"), []byte(block))
	if err != nil {
		t.Fatalf("the seed example in docs/CONFIG.md is invalid: %v", err)
	}
	seed, err := Load(filepath.Join(dir, "seed", "s1gw1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if fromDoc.Hash() != seed.Hash() {
		a, _ := fromDoc.Marshal()
		b, _ := seed.Marshal()
		t.Errorf("the seed example in docs/CONFIG.md differs from examples/seed/s1gw1.yaml:\n%s\n---\n%s", a, b)
	}
	var walk func(t reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			described := false
			for _, form := range []string{"`" + name + "`", "." + name + "`", "`" + name + ".", "## " + name + "\n"} {
				described = described || strings.Contains(string(doc), form)
			}
			if !described {
				t.Errorf("docs/CONFIG.md does not describe %s.%s (`%s`)", typ.Name(), f.Name, name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Config]())
}
