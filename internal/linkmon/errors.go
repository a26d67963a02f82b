package linkmon

import "errors"

// ErrAlreadyRunning is returned by a second call to Run on one Monitor.
// Create a new Monitor instead.
var ErrAlreadyRunning = errors.New("link monitor already running")

// errSubscribe marks a failure to subscribe at all (as opposed to a
// subscription that broke later).
var errSubscribe = errors.New("subscribing to link updates")
