package gre

import "errors"

// Errors returned by Parse. They are never wrapped, so the dataplane can
// compare them with == and count each drop reason. In every case the caller
// drops the packet.
var (
	// ErrShort: the packet is shorter than the header its flags announce.
	ErrShort = errors.New("gre: packet too short")
	// ErrVersion: the version field is not 0 (RFC 2784 §2.3.1; version 1 is
	// PPTP's enhanced GRE).
	ErrVersion = errors.New("gre: unsupported version")
	// ErrReserved: one of bits 1, 4 or 5 is set (routing present, strict
	// source route, recursion control of RFC 1701), which RFC 2784 §2.5.1
	// requires a receiver not implementing RFC 1701 to discard.
	ErrReserved = errors.New("gre: RFC 1701 bits set")
	// ErrChecksum: the C bit is set and the checksum over header and
	// payload does not verify (RFC 2784 §2.5.1).
	ErrChecksum = errors.New("gre: bad checksum")
)
