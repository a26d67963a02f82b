package cluster

import "errors"

// Sentinel errors. Decoders return them unwrapped (the receive path does not
// allocate); everything else wraps them with %w and names the object.
var (
	// ErrMalformed: a heartbeat frame has a wrong length, magic, reserved
	// bits or field value. The frame is dropped and counted; nothing to do.
	ErrMalformed = errors.New("malformed heartbeat")
	// ErrVersion: a heartbeat frame has a protocol version this node does
	// not speak. Dropped and counted; upgrade the older node.
	ErrVersion = errors.New("unsupported heartbeat version")
	// ErrAuth: a heartbeat frame's HMAC does not verify (wrong key or
	// tampering). Dropped and counted; check cluster.auth_key_file on both
	// nodes.
	ErrAuth = errors.New("heartbeat authentication failed")

	// ErrNoCluster: New was given a config without a cluster section; a
	// standalone node needs no Cluster.
	ErrNoCluster = errors.New("no cluster section in config")
	// ErrNoEligiblePeer: Standby found no alive peer that is healthy and
	// eligible to take over (the error text says why each peer is not);
	// nothing changed.
	ErrNoEligiblePeer = errors.New("no eligible peer to hand over to")
	// ErrMaintenance: Takeover on a node in maintenance mode; leave
	// maintenance first.
	ErrMaintenance = errors.New("node is in maintenance mode")
	// ErrNotEligible: Takeover on a node that is not eligible (carrier lost
	// on a monitored interface); fix the link first.
	ErrNotEligible = errors.New("node is not eligible")
	// ErrRunning: Run was called a second time. A Cluster runs once; build
	// a new one.
	ErrRunning = errors.New("cluster already ran")
)

// ErrNotRunning: Standby or Takeover while Run is not running (not started
// yet, or returned). Start the cluster first.
var ErrNotRunning = errors.New("cluster is not running")
