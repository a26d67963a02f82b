// Package esp is the ESP codec of the dataplane (RFC 4303): it seals inner
// packets into ESP and opens received ESP packets, in place and without
// allocating, with the combined-mode ciphers AES-GCM-128/256 (RFC 4106) and
// ChaCha20-Poly1305 (RFC 7634). It does no I/O.
//
// Packet layout (both ciphers):
//
//	SPI(4) | Seq(4) | IV(8) | ciphertext(payload | pad | padlen(1) | next header(1)) | ICV(16)
//
// The key of an SA is the cipher key followed by a 4-byte salt (RFC 4106 §8.1,
// RFC 7634 §2). The nonce is salt || IV. The IV is the 64-bit sequence number
// of the packet (RFC 4106 §3.1 allows a counter; RFC 8750 builds on the same
// idea), so it is unique per key without a random source. The AAD is
// SPI || Seq, or SPI || Seq-high || Seq-low with extended sequence numbers
// (RFC 4106 §5, RFC 4304 §2.2.1). Padding is the minimum that aligns the
// trailer to 4 bytes, with the monotonic pad bytes 1, 2, 3 of RFC 4303 §2.4;
// Open accepts any pad length up to 255 and checks the pad bytes.
//
// Inbound SAs keep an anti-replay window (package replay, RFC 4303 §3.4.3)
// and infer the high half of an extended sequence number with InferSeq (RFC
// 4304 Appendix A). The window is checked before the ICV and updated after it.
//
// ClassifyUDP sorts UDP port-4500 payloads per RFC 3948 (ESP, IKE behind the
// non-ESP marker, NAT-keepalive).
//
// Not implemented: the resynchronisation of RFC 4304 Appendix A3 after
// 2^32 lost packets (a packet whose inferred high half is wrong fails the
// ICV and is counted as Auth); TFC padding beyond 4-byte alignment on Seal;
// ciphers other than the three above (no AES-GCM-192, no ICV8/ICV12).
package esp
