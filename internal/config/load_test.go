package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden *.err and *.out files in testdata")

// equateAddrs lets cmp compare netip values, which have unexported fields.
var equateAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

// copyTree copies the directory src into dst, keeping the executable bit.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, fi.Mode().Perm()|0o600)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// chmodSecrets sets every file in a directory named keys to 0600, except
// those with "-0644" in their name (0644), since git keeps neither mode.
func chmodSecrets(t testing.TB, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Base(filepath.Dir(p)) != "keys" {
			return err
		}
		mode := fs.FileMode(0o600)
		if strings.Contains(e.Name(), "-0644") {
			mode = 0o644
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testTree returns a copy of testdata with secret file modes set.
func testTree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, "testdata", dir)
	chmodSecrets(t, dir)
	return dir
}

// golden compares got with the file want, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, d)
	}
}

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no testdata/%s/*.yaml: %v", dir, err)
	}
	return names
}

// TestInvalid loads every testdata/invalid/*.yaml and compares the error
// text, one error per line, with the golden *.err file.
func TestInvalid(t *testing.T) {
	tree := testTree(t)
	files := yamlFiles(t, "invalid")
	if len(files) < 25 {
		t.Errorf("only %d invalid cases, want at least 25", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			c, err := Load(filepath.Join(tree, "invalid", name+".yaml"))
			if err == nil {
				t.Fatalf("loaded without error: %+v", c)
			}
			if c != nil {
				t.Errorf("Load returned a config with the error")
			}
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("error holds no *Error: %v", err)
			}
			var lines []string
			for _, e := range errs {
				if e.Line < 1 || e.Column < 1 {
					t.Errorf("error without a position: %v", e)
				}
				lines = append(lines, strings.ReplaceAll(e.Error(), tree+string(filepath.Separator), "testdata/"))
			}
			if got := strings.Join(lines, "\n") + "\n"; got != strings.ReplaceAll(err.Error(), tree+string(filepath.Separator), "testdata/")+"\n" {
				t.Errorf("err.Error() is not the *Errors joined by newlines:\n%s", err)
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".err", strings.Join(lines, "\n")+"\n")
		})
	}
}

// TestValid loads every testdata/valid/*.yaml; where a *.out file exists
// it holds the expected Marshal output (the effective config).
func TestValid(t *testing.T) {
	tree := testTree(t)
	for _, f := range yamlFiles(t, "valid") {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(tree, "valid", name+".yaml")
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.Path != path {
				t.Errorf("Path = %q, want %q", c.Path, path)
			}
			out := strings.TrimSuffix(f, ".yaml") + ".out"
			if _, err := os.Stat(out); err == nil || *update && name == "minimal" || *update && name == "full" {
				b, err := c.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				golden(t, out, strings.ReplaceAll(string(b), tree, "TESTDATA"))
			}
		})
	}
}

// TestRoundTrip checks that Marshal's output parses to an equal Config
// with an equal hash, and that marshaling again gives the same bytes.
func TestRoundTrip(t *testing.T) {
	tree := testTree(t)
	for _, f := range yamlFiles(t, "valid") {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(tree, "valid", name)
			c1, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			b1, err := c1.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			// Parse from another directory: file names are absolute now.
			c2, err := Parse(filepath.Join(t.TempDir(), "effective.yaml"), b1)
			if err != nil {
				t.Fatalf("Marshal output does not parse: %v\n%s", err, b1)
			}
			c2.Path = c1.Path
			if d := cmp.Diff(c1, c2, equateAddrs); d != "" {
				t.Errorf("round trip changed the config (-first +second):\n%s", d)
			}
			b2, _ := c2.Marshal()
			if string(b1) != string(b2) {
				t.Errorf("Marshal is not stable:\n%s\n---\n%s", b1, b2)
			}
			if c1.Hash() != c2.Hash() {
				t.Errorf("hash changed on round trip: %s != %s", c1.Hash(), c2.Hash())
			}
		})
	}
}

func TestHashSameEffectiveConfig(t *testing.T) {
	tree := testTree(t)
	a, err := Load(filepath.Join(tree, "valid", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(filepath.Join(tree, "valid", "minimal-explicit.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Errorf("minimal and minimal-explicit hash differently: %s, %s", a.Hash(), b.Hash())
	}
	if len(a.Hash()) != 16 || strings.Trim(a.Hash(), "0123456789abcdef") != "" {
		t.Errorf("Hash() = %q, want 16 hex digits", a.Hash())
	}
	if a.Hash() != a.Hash() {
		t.Error("Hash is not stable")
	}
}

// TestHashChangesWithEveryField changes each leaf field of the full config
// in turn and checks that the hash changes.
func TestHashChangesWithEveryField(t *testing.T) {
	tree := testTree(t)
	path := filepath.Join(tree, "valid", "full.yaml")
	base, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h0 := base.Hash()
	n := 0
	var walk func(v reflect.Value, field string)
	walk = func(v reflect.Value, field string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), field)
			}
			return
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", field, i))
			}
			return
		case reflect.Struct:
			switch v.Interface().(type) {
			case interface{ IsValid() bool }: // netip.Addr, netip.Prefix
			default:
				for i := range v.NumField() {
					f := v.Type().Field(i)
					if f.Tag.Get("yaml") == "-" {
						continue
					}
					walk(v.Field(i), field+"."+f.Name)
				}
				return
			}
		}
		// A leaf: change it, hash, put it back.
		old := reflect.New(v.Type()).Elem()
		old.Set(v)
		if !mutate(v) {
			t.Errorf("%s: cannot mutate %s", field, v.Type())
			return
		}
		if h := base.Hash(); h == h0 {
			t.Errorf("%s: changing it does not change the hash", field)
		}
		v.Set(old)
		n++
	}
	walk(reflect.ValueOf(base).Elem(), "")
	if h := base.Hash(); h != h0 {
		t.Fatalf("hash not restored: %s != %s", h, h0)
	}
	if n < 100 {
		t.Errorf("only %d leaf fields mutated", n)
	}
}

// mutate changes a leaf value to a different one of the same type.
func mutate(v reflect.Value) bool {
	switch x := v.Addr().Interface().(type) {
	case *netip.Addr:
		*x = x.Next()
		if !x.IsValid() {
			*x = netip.MustParseAddr("192.0.2.99")
		}
		return true
	case *netip.Prefix:
		*x = netip.PrefixFrom(x.Addr().Next(), x.Bits())
		return true
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	default:
		return false
	}
	return true
}

func TestErrorsFlattens(t *testing.T) {
	a := &Error{File: "f.yaml", Line: 1, Column: 2, Field: "x", Msg: "bad"}
	b := &Error{File: "f.yaml", Line: 3, Column: 4, Msg: "worse"}
	tests := []struct {
		name string
		err  error
		want []*Error
	}{
		{"nil", nil, nil},
		{"plain", errors.New("io"), nil},
		{"one", a, []*Error{a}},
		{"joined", errors.Join(a, b), []*Error{a, b}},
		{"nested", errors.Join(errors.Join(a), fmt.Errorf("wrapped: %w", b)), []*Error{a, b}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Errors(tc.err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Errors() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		e    Error
		want string
	}{
		{"full", Error{"havpn.yaml", 12, 13, "tunnels[0].remote", `"216.1.1.300" is not an IP address`},
			`havpn.yaml:12:13: tunnels[0].remote: "216.1.1.300" is not an IP address`},
		{"no field", Error{"havpn.yaml", 1, 1, "", "yaml: oops"}, "havpn.yaml:1:1: yaml: oops"},
		{"no position", Error{"havpn.yaml", 0, 0, "", "too big"}, "havpn.yaml: too big"},
		{"no file", Error{"", 2, 3, "a", "b"}, "2:3: a: b"},
		{"only a message", Error{Msg: "m"}, "m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.e.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if Errors(err) != nil {
		t.Errorf("an I/O error holds *Error values: %v", Errors(err))
	}
}

// TestJSON checks that a Config survives JSON (havpn config show -o json,
// the control socket) and that JSON uses the YAML field names and
// duration strings.
func TestJSON(t *testing.T) {
	tree := testTree(t)
	c, err := Load(filepath.Join(tree, "valid", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"node_id":1`, `"keepalive":"20ms"`, `"ike_lifetime":"8h"`, `"peer_address":"172.16.0.2"`, `"gre_key":3`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	if strings.Contains(string(b), `"Path"`) {
		t.Errorf("JSON has Path: %s", b)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	back.Path = c.Path
	if d := cmp.Diff(c, &back, equateAddrs); d != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", d)
	}
}
