package config

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Limits on what the decoder walks, so that a hostile file (alias bombs,
// self-referencing aliases, deep nesting) fails with an error instead of
// exhausting memory or the stack.
const (
	maxNodes  = 200_000
	maxDepth  = 64
	maxErrors = 100
)

// pos is a 1-based line:column in the file.
type pos struct{ line, col int }

// decoder turns the YAML AST into a *Config, collecting every problem
// instead of stopping at the first, and remembering where each field was
// written so that validation can point at it.
type decoder struct {
	file    string
	errs    []*Error
	at      map[string]pos  // field path -> where its value is written
	bad     map[string]bool // field paths whose value could not be decoded
	anchors map[string]ast.Node
	nodes   int
	tooBig  bool
}

func newDecoder(file string) *decoder {
	return &decoder{
		file:    file,
		at:      map[string]pos{},
		bad:     map[string]bool{},
		anchors: map[string]ast.Node{},
	}
}

// fail records an error for field at p and marks the field as bad, so that
// validation does not report it a second time.
// After maxErrors errors it records one more saying so and stops the
// decoder (tooBig), since later errors are likely consequences.
func (d *decoder) fail(p pos, field, format string, args ...any) {
	d.bad[field] = true
	if d.tooBig {
		return
	}
	if len(d.errs) == maxErrors {
		d.tooBig = true
		format, args = "too many errors (more than %d); fix these first", []any{maxErrors}
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: p.line, Column: p.col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// nodePos returns where n starts: for a block mapping, its first key.
func nodePos(n ast.Node) pos {
	if n == nil {
		return pos{1, 1}
	}
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 && m.Values[0].Key != nil {
		return tokenPos(m.Values[0].Key.GetToken())
	}
	if mv, ok := n.(*ast.MappingValueNode); ok && mv.Key != nil {
		return tokenPos(mv.Key.GetToken())
	}
	return tokenPos(n.GetToken())
}

func tokenPos(tk *token.Token) pos {
	if tk == nil || tk.Position == nil {
		return pos{1, 1}
	}
	return pos{tk.Position.Line, tk.Position.Column}
}

// collectAnchors records every anchor in document order, so that an alias
// can refer to an anchor under any key, known or not.
func (d *decoder) collectAnchors(n ast.Node, depth int) {
	if n == nil || depth > maxDepth {
		return
	}
	switch x := n.(type) {
	case *ast.AnchorNode:
		if x.Name != nil {
			d.anchors[x.Name.String()] = x.Value
		}
		d.collectAnchors(x.Value, depth+1)
	case *ast.TagNode:
		d.collectAnchors(x.Value, depth+1)
	case *ast.MappingNode:
		for _, v := range x.Values {
			d.collectAnchors(v, depth+1)
		}
	case *ast.MappingValueNode:
		d.collectAnchors(x.Key, depth+1)
		d.collectAnchors(x.Value, depth+1)
	case *ast.SequenceNode:
		for _, v := range x.Values {
			d.collectAnchors(v, depth+1)
		}
	}
}

// resolve follows anchors and aliases to the node that holds the value.
func (d *decoder) resolve(n ast.Node, field string, depth int) (ast.Node, bool) {
	for hops := 0; ; hops++ {
		if hops > maxDepth {
			d.fail(nodePos(n), field, "aliases nested too deeply")
			return nil, false
		}
		switch x := n.(type) {
		case *ast.AnchorNode:
			n = x.Value
		case *ast.AliasNode:
			name := ""
			if x.Value != nil {
				name = x.Value.String()
			}
			target, ok := d.anchors[name]
			if !ok {
				d.fail(nodePos(n), field, "alias *%s refers to no anchor", name)
				return nil, false
			}
			n = target
		case *ast.TagNode:
			d.fail(nodePos(n), field, "YAML tags (%s) are not supported", x.Start.Value)
			return nil, false
		default:
			return n, true
		}
	}
}

// kindOf names the kind of YAML value n is, for messages.
func kindOf(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.NullNode, nil:
		return "empty"
	}
	return "an unsupported YAML value"
}

// scalarText returns the text of a string scalar.
func scalarText(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value == nil {
			return "", true
		}
		return x.Value.Value, true
	}
	return "", false
}

// decode stores the YAML value n into v, the field at path field.
func (d *decoder) decode(n ast.Node, v reflect.Value, field string, depth int) {
	if d.tooBig {
		return
	}
	d.nodes++
	if d.nodes > maxNodes || depth > maxDepth {
		d.fail(nodePos(n), field, "document too large or nested too deeply (aliases expand to more than %d values)", maxNodes)
		d.tooBig = true
		return
	}
	if _, seen := d.at[field]; !seen {
		d.at[field] = nodePos(n)
	}
	n, ok := d.resolve(n, field, depth)
	if !ok {
		return
	}
	p := nodePos(n)
	if _, null := n.(*ast.NullNode); null || n == nil {
		switch {
		case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
			if v.IsNil() {
				v.Set(newDefaulted(v.Type().Elem()))
			}
		case v.Kind() == reflect.Struct && v.Type() != reflect.TypeFor[netip.Addr]() && v.Type() != reflect.TypeFor[netip.Prefix]():
		case v.Kind() == reflect.Slice:
			v.SetZero()
		default:
			d.fail(p, field, "missing value")
		}
		return
	}
	switch v.Type() {
	case reflect.TypeFor[Duration]():
		d.decodeDuration(n, v, field, p)
		return
	case reflect.TypeFor[netip.Addr]():
		s, ok := d.str(n, field, p, "an IP address")
		if !ok {
			return
		}
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil:
			d.fail(p, field, "%q is not an IP address", s)
		case a.Zone() != "":
			d.fail(p, field, "%q: zones are not allowed", s)
		default:
			v.Set(reflect.ValueOf(a))
		}
		return
	case reflect.TypeFor[netip.Prefix]():
		s, ok := d.str(n, field, p, "a prefix")
		if !ok {
			return
		}
		if _, err := netip.ParseAddr(s); err == nil {
			d.fail(p, field, "%q is not a prefix: the /length is missing", s)
			return
		}
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			d.fail(p, field, "%q is not a prefix (address/length)", s)
			return
		}
		v.Set(reflect.ValueOf(pf))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(newDefaulted(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), field, depth+1)
	case reflect.Struct:
		d.decodeStruct(n, v, field, p, depth)
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.fail(p, field, "must be a list, not %s", kindOf(n))
			return
		}
		v.SetZero()
		for i, e := range seq.Values {
			ev := newDefaulted(v.Type().Elem()).Elem()
			d.decode(e, ev, fmt.Sprintf("%s[%d]", field, i), depth+1)
			v.Set(reflect.Append(v, ev))
		}
	case reflect.String:
		s, ok := d.str(n, field, p, "a string")
		if !ok {
			return
		}
		if allowed := enumValues(v.Type()); allowed != nil && !contains(allowed, s) {
			d.fail(p, field, "%q is not one of %s", s, strings.Join(allowed, ", "))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.fail(p, field, "must be true or false, not %s", kindOf(n))
			return
		}
		v.SetBool(b.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.decodeInt(n, v, field, p)
	default:
		d.fail(p, field, "cannot hold a value (internal: kind %s)", v.Kind())
	}
}

// str returns n's text if it is a string scalar, else records an error
// saying that field must be what.
func (d *decoder) str(n ast.Node, field string, p pos, what string) (string, bool) {
	s, ok := scalarText(n)
	if !ok {
		switch n.(type) {
		case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
			d.fail(p, field, "must be %s, not %s (quote it to make it a string)", what, kindOf(n))
		default:
			d.fail(p, field, "must be %s, not %s", what, kindOf(n))
		}
		return "", false
	}
	return s, true
}

func (d *decoder) decodeDuration(n ast.Node, v reflect.Value, field string, p pos) {
	if i, ok := n.(*ast.IntegerNode); ok {
		if x, ok := i.Value.(uint64); ok && x == 0 {
			v.SetInt(0)
			return
		}
		if x, ok := i.Value.(int64); ok && x == 0 {
			v.SetInt(0)
			return
		}
		d.fail(p, field, "%s is not a duration: give a unit, like \"150ms\" or \"2s\"", i.String())
		return
	}
	s, ok := d.str(n, field, p, "a duration like \"150ms\"")
	if !ok {
		return
	}
	t, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.fail(p, field, "%q is not a duration (like \"150ms\", \"2s\", \"4h\")", s)
	case t < 0:
		d.fail(p, field, "%q: must not be negative", s)
	default:
		v.SetInt(int64(t))
	}
}

func (d *decoder) decodeInt(n ast.Node, v reflect.Value, field string, p pos) {
	in, ok := n.(*ast.IntegerNode)
	if !ok {
		d.fail(p, field, "must be an integer, not %s", kindOf(n))
		return
	}
	bits := v.Type().Bits()
	switch v.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		max := uint64(math.MaxUint64) >> (64 - bits)
		var x uint64
		switch val := in.Value.(type) {
		case uint64:
			x = val
		case int64:
			if val < 0 {
				d.fail(p, field, "%d is out of range (0..%d)", val, max)
				return
			}
			x = uint64(val)
		default:
			d.fail(p, field, "%s is not an integer", in.String())
			return
		}
		if x > max {
			d.fail(p, field, "%d is out of range (0..%d)", x, max)
			return
		}
		v.SetUint(x)
	default:
		max := int64(math.MaxInt64) >> (64 - bits)
		min := -max - 1
		var x int64
		switch val := in.Value.(type) {
		case int64:
			x = val
		case uint64:
			if val > uint64(max) {
				d.fail(p, field, "%d is out of range (%d..%d)", val, min, max)
				return
			}
			x = int64(val)
		default:
			d.fail(p, field, "%s is not an integer", in.String())
			return
		}
		if x < min || x > max {
			d.fail(p, field, "%d is out of range (%d..%d)", x, min, max)
			return
		}
		v.SetInt(x)
	}
}

// decodeStruct decodes a YAML mapping into the struct v, field by field
// (by yaml tag), reporting unknown and duplicate keys.
func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, field string, p pos, depth int) {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		if field == "" {
			d.fail(p, field, "the file must be a mapping of fields (version: 1, node: ...), not %s", kindOf(n))
		} else {
			d.fail(p, field, "must be a mapping, not %s", kindOf(n))
		}
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]pos{}
	for _, kv := range pairs {
		if kv == nil || kv.Key == nil {
			continue
		}
		kp := tokenPos(kv.Key.GetToken())
		if _, merge := kv.Key.(*ast.MergeKeyNode); merge {
			d.fail(kp, field, "merge keys (<<) are not supported")
			continue
		}
		key, ok := scalarText(kv.Key)
		if !ok {
			if _, scalar := kv.Key.(ast.ScalarNode); !scalar {
				d.fail(kp, field, "keys must be plain names, not %s", kindOf(kv.Key))
				continue
			}
			key = kv.Key.String()
		}
		sub := join(field, key)
		if first, dup := seen[key]; dup {
			d.fail(kp, sub, "duplicate key (first at line %d)", first.line)
			continue
		}
		seen[key] = kp
		idx, known := fields[key]
		if !known {
			msg := "unknown field"
			if s := suggest(key, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.fail(kp, sub, "%s", msg)
			continue
		}
		if _, null := kv.Value.(*ast.NullNode); null || kv.Value == nil {
			d.at[sub] = kp
		}
		d.decode(kv.Value, v.Field(idx), sub, depth+1)
	}
}

// join appends a key to a field path.
func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// yamlFields maps the yaml names of t's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	return m
}

// suggest returns the known field closest to key if it is a likely typo.
func suggest(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestD := "", 3 // farther than 2 edits is not a typo
	for _, name := range names {
		if dd := editDistance(key, name); dd < bestD {
			best, bestD = name, dd
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// enumValues lists the values a string type accepts; nil means any.
func enumValues(t reflect.Type) []string {
	switch t {
	case reflect.TypeFor[ResourceType]():
		return []string{"vip", "tunnel", "ike", "bgp", "script"}
	case reflect.TypeFor[TunnelMode]():
		return []string{"gre", "ip"}
	case reflect.TypeFor[Cipher]():
		return []string{"aes-gcm-128", "aes-gcm-256", "chacha20-poly1305"}
	case reflect.TypeFor[Keying]():
		return []string{"ike", "manual"}
	case reflect.TypeFor[IKEAuth]():
		return []string{"cert", "psk"}
	case reflect.TypeFor[RedistSource]():
		return []string{"connected", "static", "kernel"}
	case reflect.TypeFor[Action]():
		return []string{"permit", "deny"}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
