// Package config turns a havpn YAML file into a validated, immutable *Config.
//
// The schema (version 1) is described in CONFIG-SCHEMA.md and by the types in
// types.go. Load and Parse decode, apply defaults (defaults.go, the only
// place defaults live), and validate. Every problem found is reported at once
// as an errors.Join of *Error values, each naming file:line:column and the
// field path ("havpn.yaml:12:13: tunnels[0].remote: ...").
package config
