package fib

import "errors"

// Sentinel errors.
var (
	// ErrNoRoute: a delete found no such route in the kernel (ESRCH). A
	// Reconciler treats it as done; other callers can ignore it too.
	ErrNoRoute = errors.New("no such route")
	// ErrUnsupported: the netlink Kernel is only implemented on Linux.
	ErrUnsupported = errors.New("kernel routing table not supported on this OS")
	// ErrClosed: the Kernel was closed; make a new one.
	ErrClosed = errors.New("kernel routing table handle closed")
)

// OpError is a kernel route change that failed.
type OpError struct {
	Op  Op
	Err error
	// Msg is the kernel's explanation (netlink extended ack), if it gave
	// one, e.g. "Nexthop has invalid gateway".
	Msg string
}

// Error names the op and the route, the errno and the kernel's message.
func (e *OpError) Error() string {
	s := e.Op.String() + ": " + e.Err.Error()
	if e.Msg != "" {
		s += " (" + e.Msg + ")"
	}
	return s
}

// Unwrap returns the underlying error (a syscall.Errno, ErrNoRoute, ...).
func (e *OpError) Unwrap() error { return e.Err }
