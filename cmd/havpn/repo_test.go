package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/havpn/havpn"

type goPkg struct {
	ImportPath string
	Doc        string
	Deps       []string // transitive, tests excluded
	GoFiles    []string
}

// listPackages returns every package of the module as `go list` sees it.
func listPackages(t *testing.T) []goPkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// TestPackageDocs fails any package without a package doc (tailscale's
// pkgdoc_test).
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		if len(p.GoFiles) > 0 && strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s: no package doc", p.ImportPath)
		}
	}
}

// badDeps lists, per package pattern, the imports it must not have and why
// (STYLE.md "Dependency direction").
var badDeps = []struct {
	pkg, dep, why, except string
}{
	{"internal/config", "internal/", "config is a leaf", ""},
	{"internal/metrics", "internal/", "metrics is a leaf", ""},
	{"internal/tunnel/esp", "internal/", "esp is a pure codec", "internal/tunnel/replay"},
	{"internal/tunnel/gre", "internal/", "gre is a pure codec", ""},
	{"internal/cluster", "internal/vip", "components meet only in daemon", ""},
	{"internal/cluster", "internal/tunnel", "components meet only in daemon", ""},
	{"internal/cluster", "internal/bgp", "components meet only in daemon", ""},
	{"internal/cluster", "internal/resources", "components meet only in daemon", ""},
	{"internal/tunnel", "internal/ike", "ike installs SAs through the daemon", ""},
	{"internal/tunnel", "internal/cluster", "components meet only in daemon", ""},
	{"internal/tunnel", "internal/statesync", "state sync uses the tunnel's ExportSAs and Install methods", ""},
	{"internal/", "internal/daemon", "the daemon composes the parts, not the reverse", ""},
	{"internal/ike", "internal/tunnel", "ike declares its own SA installer interface", ""},
	{"internal/bgp", "internal/cluster", "components meet only in daemon", ""},
	{"internal/bgp", "internal/tunnel", "components meet only in daemon", ""},
	{"internal/ctl", "internal/daemon", "daemon implements what ctl serves", ""},
	{"internal/", "internal/lab", "only cmd/havpn and tests use the lab", ""},
	{"internal/", "test", "production code never imports a fake", ""},
}

// TestDependencyDirection checks each production package's dependencies,
// direct and indirect (tests excluded), against badDeps.
func TestDependencyDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if strings.HasPrefix(rel, "internal/lab") || strings.HasSuffix(rel, "test") {
			continue // the lab and fakes are test tooling themselves
		}
		for _, imp := range p.Deps {
			irel, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			for _, b := range badDeps {
				if !under(rel, b.pkg) || under(irel, rel) || b.except != "" && under(irel, b.except) {
					continue
				}
				if b.dep == "test" && strings.HasSuffix(irel, "test") ||
					b.dep != "test" && strings.HasPrefix(irel, b.dep) {
					t.Errorf("%s imports %s: %s", rel, irel, b.why)
				}
			}
		}
	}
}

// under reports whether pkg is pattern or inside it ("internal/" matches all).
func under(pkg, pattern string) bool {
	if strings.HasSuffix(pattern, "/") {
		return strings.HasPrefix(pkg, pattern)
	}
	return pkg == pattern || strings.HasPrefix(pkg, pattern+"/")
}
