// Package replay implements the anti-replay sliding window of RFC 4303
// §3.4.3 for 64-bit sequence numbers (plain 32-bit ones and extended
// sequence numbers, RFC 4304, alike).
//
// The window is a ring of 64-bit blocks, the layout of the Linux kernel's
// xfrm replay bitmap and of wireguard-go's replay package: moving the top
// forward clears whole blocks instead of shifting a bitmap, so every
// operation is O(1) except a jump of many blocks, which costs at most one
// pass over the ring.
//
// Use Check before the integrity check (cheap drop of obvious replays) and
// Accept only after the ICV verified, as RFC 4303 §3.4.3 requires: the window
// is never moved by an unauthenticated packet.
//
// A Window is not safe for concurrent use; the caller (the ESP SA) holds its
// lock around every call.
package replay
