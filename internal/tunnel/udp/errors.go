package udp

import "errors"

var (
	// ErrUnsupported is returned by Listen on systems other than Linux.
	ErrUnsupported = errors.New("batched udp is not supported on this system")
	// ErrFamily means a message's destination is not of the socket's
	// address family; the message was not sent. Fix the caller.
	ErrFamily = errors.New("destination address family differs from the socket's")
)
