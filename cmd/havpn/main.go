// Command havpn is the havpn daemon (`havpn run`) and its command-line
// client, plus the network-namespace lab (`havpn lab`).
//
// Exit codes:
//
//	0  success
//	1  the operation failed (invalid config, daemon error, lab error)
//	2  usage error (unknown command or flag, wrong arguments)
//	3  no daemon answers on the control socket
//	4  the daemon refused (e.g. `standby` while the peer is not healthy)
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/havpn/havpn/internal/ctl"
)

// Exit codes; see the package doc.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitNoDaemon = 3
	exitRefused  = 4
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var se silentError
	if !errors.As(err, &se) {
		fmt.Fprintln(os.Stderr, "havpn:", err)
	}
	return exitCode(err)
}

// silentError carries an exit code for an error that was already printed
// (e.g. the list of config errors).
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError marks a wrong invocation.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// noDaemonError marks a failure to reach the control socket.
type noDaemonError struct{ err error }

func (e noDaemonError) Error() string { return e.err.Error() }
func (e noDaemonError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var se silentError
	var ue usageError
	var nd noDaemonError
	var ce *ctl.Error
	switch {
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ue), isCobraUsage(err):
		return exitUsage
	case errors.As(err, &nd):
		return exitNoDaemon
	case errors.As(err, &ce) && ce.Code == ctl.CodeRefused:
		return exitRefused
	}
	return exitFailure
}

// isCobraUsage recognises cobra's own usage errors, which are untyped.
func isCobraUsage(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command ")
}
