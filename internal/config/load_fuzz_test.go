package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse feeds arbitrary bytes to Parse. Invariants: no panic; an error
// is an errors.Join of *Error values whose positions lie inside the input
// and whose text is the joined text; a success round-trips through Marshal
// to an equal Config with an equal Hash. The seeds are every testdata file;
// relative file names resolve against a copy of testdata whose secret files
// have mode 0600, so valid seeds parse.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("version: 1\nnode: {name: x}\n---\n"))
	tree := testTree(f)
	name := filepath.Join(tree, "valid", "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(name, data)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config and an error")
			}
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("error without *Error: %v", err)
			}
			// YAML ends lines at \n, \r\n and \r.
			norm := bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
			lines := bytes.Count(norm, []byte("\n")) + 1
			var texts []string
			for _, e := range errs {
				if e.File != name {
					t.Errorf("error names file %q, want %q", e.File, name)
				}
				if e.Line < 0 || e.Line > lines+1 || e.Column < 0 {
					t.Errorf("position %d:%d outside the %d-line input: %v", e.Line, e.Column, lines, e)
				}
				if e.Msg == "" {
					t.Errorf("error without a message: %#v", e)
				}
				texts = append(texts, e.Error())
			}
			if strings.Join(texts, "\n") != err.Error() {
				t.Errorf("err.Error() is not the joined *Error texts")
			}
			return
		}
		b1, err := c.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := Parse(name, b1)
		if err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, b1)
		}
		if d := cmp.Diff(c, c2, equateAddrs); d != "" {
			t.Fatalf("round trip changed the config (-first +second):\n%s\n%s", d, b1)
		}
		if c.Hash() != c2.Hash() {
			t.Fatalf("hash changed on round trip")
		}
	})
}
