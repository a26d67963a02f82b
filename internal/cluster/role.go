package cluster

import "fmt"

// Role is a node's cluster role.
//
//	init ──> standby <──> active
//	  └──────────────────────^
//
// A node starts in RoleInit and leaves it as soon as it knows enough to decide
// (a peer is heard, or initdead passes). It never returns to RoleInit.
type Role uint8

// Roles. The values are the wire encoding (heartbeat.go).
const (
	RoleInit    Role = 0
	RoleStandby Role = 1
	RoleActive  Role = 2
)

// String returns "init", "standby" or "active" (the log vocabulary of
// LOGGING.md), or "role(N)" for an invalid value.
func (r Role) String() string {
	switch r {
	case RoleInit:
		return "init"
	case RoleStandby:
		return "standby"
	case RoleActive:
		return "active"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// MarshalText encodes r as its String form, for JSON status output.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses the String form.
func (r *Role) UnmarshalText(b []byte) error {
	switch string(b) {
	case "init":
		*r = RoleInit
	case "standby":
		*r = RoleStandby
	case "active":
		*r = RoleActive
	default:
		return fmt.Errorf("parsing role %q: want init, standby or active", b)
	}
	return nil
}

func (r Role) valid() bool { return r <= RoleActive }
