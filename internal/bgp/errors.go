package bgp

import "errors"

// Sentinel errors.
var (
	// ErrNoPrefixList: a neighbor or redistribution names a prefix list
	// that is not defined. config.Load rejects such configs; this shows up
	// only with a hand-built config.
	ErrNoPrefixList = errors.New("prefix list not defined")
	// ErrNoRouteSource: redistribution is configured but Options.Source is
	// nil and Options.Kernel cannot read kernel routes; pass a Source.
	ErrNoRouteSource = errors.New("redistribute needs a kernel route source")
	// ErrClosed: the Speaker was closed; make a new one.
	ErrClosed = errors.New("bgp speaker closed")
	// ErrNotRunning: the Speaker is stopped, so there is no RIB to show.
	ErrNotRunning = errors.New("bgp is not running")
)
