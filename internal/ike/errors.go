package ike

import "errors"

// Errors of package ike. They are returned wrapped; test with errors.Is.
var (
	// ErrProposal means a proposal string is malformed, names a weak or
	// unsupported algorithm, or lacks a required transform. Fix the config.
	ErrProposal = errors.New("invalid proposal")
	// ErrIdentity means an identity string cannot be parsed. Fix the config.
	ErrIdentity = errors.New("invalid identity")
	// ErrConfig means an engine configuration is incomplete or inconsistent.
	ErrConfig = errors.New("invalid IKE configuration")
	// ErrUnknownPeer means a peer name that is not configured.
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrCertificate means a peer certificate chain did not verify or does
	// not contain the peer's identity; the IKE SA is refused with
	// AUTHENTICATION_FAILED.
	ErrCertificate = errors.New("certificate not acceptable")
	// ErrClosed means the daemon has stopped.
	ErrClosed = errors.New("ike daemon closed")
)
