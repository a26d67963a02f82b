// Package gre encodes and decodes GRE headers (RFC 2784) with the key and
// sequence number extensions of RFC 2890, on plain byte slices: no I/O, no
// allocation.
//
// Header layout (RFC 2784 §2, RFC 2890 §2):
//
//	|C|R|K|S| Reserved0 (9) |Ver (3)|        Protocol Type (16)     |
//	|   Checksum (16, if C)         |   Reserved1 (16, if C)        |
//	|                        Key (32, if K)                         |
//	|                 Sequence Number (32, if S)                    |
//
// Put writes the header the dataplane sends: no checksum, no sequence
// number, an optional key so that several tunnels can share the same outer
// endpoints (RFC 2890 §2.1). Parse accepts everything RFC 2784 §2.5.1 and
// RFC 2890 allow a receiver to accept: it verifies the checksum when the C
// bit is set, returns the key and sequence number when present, ignores
// Reserved0 bits 6-12 and Reserved1, and rejects version != 0 and the RFC
// 1701 bits (routing present, strict source route, recursion control).
//
// Not implemented: sequence number ordering (RFC 2890 §2.2 lets a receiver
// drop out-of-order packets; Parse only reports the number, the caller
// decides), and sending checksums or sequence numbers.
package gre
