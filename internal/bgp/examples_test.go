package bgp_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/havpn/havpn/internal/bgp"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/fib/fibtest"
)

// TestExampleConfigs starts a speaker (without listener, fake kernel) from
// every shipped example with a bgp section: GoBGP must accept the policies
// built from its prefix lists, and the networks must be in the RIB.
func TestExampleConfigs(t *testing.T) {
	dir := examplesTree(t)
	n := 0
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		t.Run(rel, func(t *testing.T) {
			cfg, err := config.Load(p)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.BGP == nil {
				t.Skip("no bgp section")
			}
			n++
			b := *cfg.BGP
			b.ListenPort = -1
			for i := range b.Neighbors {
				b.Neighbors[i].Passive = true // no connection attempts
			}
			s, err := bgp.New(&b, bgp.Options{Kernel: fibtest.New()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			rs, err := s.Routes()
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != len(b.Networks) {
				t.Errorf("RIB has %d routes, want the %d networks: %+v", len(rs), len(b.Networks), rs)
			}
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		return nil
	})
	if n == 0 {
		t.Fatal("no example with a bgp section")
	}
}

// examplesTree copies ../../examples into a temporary directory with the
// key files at 0600, as the examples README asks after a checkout.
func examplesTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples")
	dir := t.TempDir()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(dir, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if filepath.Base(filepath.Dir(p)) == "keys" {
			mode = 0o600
		}
		return os.WriteFile(dst, b, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// exampleBGP loads the bgp section of an example config (path relative to
// examples/).
func exampleBGP(t *testing.T, dir, rel string) *config.BGP {
	t.Helper()
	cfg, err := config.Load(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BGP == nil {
		t.Fatalf("%s has no bgp section", rel)
	}
	return cfg.BGP
}
