// Package config turns a havpn YAML file into a validated, immutable *Config.
//
// The schema (version 1) is described in docs/CONFIG.md and by the types in
// types.go. Load and Parse decode the file with the AST of
// github.com/goccy/go-yaml (so that every value has a line and column),
// apply defaults (defaults.go, the only place defaults live), resolve file
// names against the config file's directory, and validate.
//
// The decoder is strict: unknown fields, values of the wrong YAML type,
// duplicate keys, YAML tags and merge keys are errors. Validation checks
// addresses and prefixes, unique names and node ids, references between
// sections (resources to tunnels, neighbors to prefix lists, state sync to
// cluster links), timer relations, tunnel MTUs against the encapsulation
// overhead, and secret files (present, mode 0600 or stricter, right length).
//
// Every problem found is reported at once, as an errors.Join of *Error
// values sorted by position, each naming file:line:column and the field
// path:
//
//	havpn.yaml:12:13: tunnels[0].remote: "216.1.1.300" is not an IP address
//
// Errors flattens such an error back into its *Error values.
//
// What is not checked: whether interfaces exist (they may appear later),
// whether the peers' files agree with this one (node ids and priorities are
// checked only within one file), and IKE proposal algorithms (only their
// syntax; package ike checks the algorithms).
//
// A *Config returned by Load or Parse must not be modified; it is safe for
// concurrent reads. Hash and Marshal give its canonical form.
package config
