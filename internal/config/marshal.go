package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
)

// Marshal returns the effective config as YAML: every field with its
// value after defaults, in the order of the types, file names absolute.
// Parsing the output gives a Config equal to c. Empty lists and unset
// optional fields are left out.
func (c *Config) Marshal() ([]byte, error) {
	b, err := yaml.MarshalWithOptions(toYAML(reflect.ValueOf(c).Elem()), yaml.Indent(2), yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("marshaling config: %w", err)
	}
	return b, nil
}

// Hash returns the first 16 hex digits of the SHA-256 of the canonical
// effective config (Marshal's output). Two configs with equal effective
// settings have equal hashes however they were written (comments, order,
// defaults spelled out or not). The contents of secret files are not part
// of it, only their names.
func (c *Config) Hash() string {
	b, err := c.Marshal()
	if err != nil {
		// Marshal only fails on types toYAML does not produce; keep the
		// hash distinct from every real one.
		return "marshal-error"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// toYAML converts a config value into plain values and ordered maps that
// the YAML encoder writes in a canonical form.
func toYAML(v reflect.Value) any {
	switch v.Type() {
	case reflect.TypeFor[Duration]():
		return Duration(v.Int()).String()
	case reflect.TypeFor[netip.Addr]():
		a := v.Interface().(netip.Addr)
		if !a.IsValid() {
			return ""
		}
		return a.String()
	case reflect.TypeFor[netip.Prefix]():
		p := v.Interface().(netip.Prefix)
		if !p.IsValid() {
			return ""
		}
		return p.String()
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return toYAML(v.Elem())
	case reflect.Struct:
		var m yaml.MapSlice
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fv := v.Field(i)
			if (strings.Contains(opts, "omitempty") || fv.Kind() == reflect.Slice) && fv.IsZero() || fv.Kind() == reflect.Slice && fv.Len() == 0 {
				continue
			}
			m = append(m, yaml.MapItem{Key: name, Value: toYAML(fv)})
		}
		return m
	case reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toYAML(v.Index(i))
		}
		return out
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	}
	return fmt.Sprint(v.Interface())
}
