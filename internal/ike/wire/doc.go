// Package wire encodes and decodes IKEv2 messages (RFC 7296 §3): the IKE
// header, the generic payload chain and every payload havpn uses (SA with
// proposals, transforms and attributes, KE, Nonce, IDi/IDr, CERT, CERTREQ,
// AUTH, Notify, Delete, Vendor ID, TSi/TSr, Configuration, the Encrypted
// payload SK and the Encrypted Fragment payload SKF of RFC 7383).
//
// The package does no cryptography and no I/O. Encrypted and Fragment
// payloads are decoded as opaque bytes (IV, ciphertext and ICV); the caller
// decrypts them and decodes the inner payload chain with DecodePayloads.
//
// Decoding is strict: every length field is checked against the bytes that
// are really there, the message length must equal the datagram length, an
// SK or SKF payload must be the last one, and trailing bytes are rejected.
// Reserved fields are ignored on receipt and written as zero. Payload types
// the package does not know are kept as *Unknown so that the caller can
// answer UNSUPPORTED_CRITICAL_PAYLOAD when the critical bit is set.
//
// All functions are safe for concurrent use. Every byte slice in a decoded
// value is a copy, so the caller may reuse its receive buffer.
package wire
