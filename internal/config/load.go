package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// maxFileSize bounds the size of a config file.
const maxFileSize = 1 << 20

// Load reads the config file at path and returns it parsed, defaulted and
// validated (see Parse). Config.Path is the absolute path. A file that
// cannot be read gives a wrapped *fs.PathError; problems in the file give an
// errors.Join of *Error (see Errors).
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path %s: %w", path, err)
	}
	c.Path = abs
	return c, nil
}

// Parse parses, defaults and validates a config file's contents. name is
// the file name used in error messages; relative file names in the config
// (secrets, certificates, scripts) are resolved against its directory and
// are absolute in the returned Config. Secret files are read to check their
// permissions and contents. All problems are returned at once, as an
// errors.Join of *Error sorted by position; Parse never returns a partial
// Config.
func Parse(name string, data []byte) (*Config, error) {
	d := newDecoder(name)
	if len(data) > maxFileSize {
		return nil, errors.Join(&Error{File: name, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileSize)})
	}
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, errors.Join(err)
	}
	c := &Config{}
	setDefaults(c)
	if root != nil {
		d.collectAnchors(root, 0)
		d.decode(root, reflect.ValueOf(c).Elem(), "", 0)
	}
	if !d.tooBig {
		derive(c)
		v := &validator{d: d, c: c, dir: filepath.Dir(name), files: map[string]string{}}
		v.resolvePaths()
		v.validate()
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// yamlError is what the goccy parser's errors have in common.
type yamlError interface {
	GetToken() *token.Token
	GetMessage() string
}

// parseYAML parses data into the AST of its single document. It returns a
// nil node for an empty document.
func parseYAML(name string, data []byte) (root ast.Node, err error) {
	defer func() {
		// The parser is third-party code fed with untrusted bytes: a panic in
		// it becomes an error, never a crash of the daemon or the CLI.
		if r := recover(); r != nil {
			root, err = nil, &Error{File: name, Msg: fmt.Sprintf("yaml: the parser failed on this input: %v", r)}
		}
	}()
	f, perr := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if perr != nil {
		var ye yamlError
		if errors.As(perr, &ye) {
			p := tokenPos(ye.GetToken())
			return nil, &Error{File: name, Line: p.line, Column: p.col, Msg: "yaml: " + ye.GetMessage()}
		}
		return nil, &Error{File: name, Msg: "yaml: " + perr.Error()}
	}
	var docs []ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc.Body)
		}
	}
	switch len(docs) {
	case 0:
		return nil, nil
	case 1:
		return docs[0], nil
	}
	p := nodePos(docs[1])
	return nil, &Error{File: name, Line: p.line, Column: p.col, Msg: "only one YAML document is allowed"}
}
