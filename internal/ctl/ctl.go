// Package ctl is the control protocol between the havpn daemon and its CLI:
// one JSON request and one JSON response per connection over a unix socket.
//
// The socket is root-only (created under umask 077 in a 0755 directory, as
// wireguard-go's uapi does). Requests carry a protocol version; replies
// carry a machine-readable error code next to the message, so scripts can
// tell "not found" from "refused" without parsing text.
package ctl

import (
	"encoding/json"
	"fmt"
)

// Version is the protocol version this package speaks.
const Version = 1

// Commands the daemon serves.
const (
	CmdStatus    = "status"
	CmdTunnels   = "tunnels"
	CmdSAs       = "sas"
	CmdRoutes    = "routes"
	CmdNeighbors = "neighbors"
	CmdStandby   = "standby"
	CmdTakeover  = "takeover"
	CmdReload    = "reload"
	CmdLogLevel  = "log-level"
)

// Request is what the CLI sends.
type Request struct {
	Version int             `json:"version"`
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// Response is what the daemon answers. Exactly one of Error and Data is set.
type Response struct {
	Version int             `json:"version"`
	Error   *Error          `json:"error,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Error codes in replies.
const (
	CodeBadRequest  = "bad-request" // malformed or wrong version; fix the client
	CodeUnknown     = "unknown"     // no such command
	CodeUnavailable = "unavailable" // the part is not configured or not running
	CodeRefused     = "refused"     // the daemon will not do it now (e.g. peer not healthy)
	CodeInvalid     = "invalid"     // arguments or new config rejected
	CodeInternal    = "internal"    // a bug or an OS failure
)

// Error is an error with a code, returned by handlers and by the client.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
