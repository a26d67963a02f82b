// Package ikecrypto holds the cryptography of IKEv2 (RFC 7296): key
// exchange groups 19 and 20 (RFC 5903, crypto/ecdh P-256/P-384) and 31
// (RFC 8031, X25519); the HMAC-SHA2 pseudo-random functions (RFC 4868)
// and prf+ (§2.13); SKEYSEED and SK_* derivation for new and rekeyed IKE SAs
// (§2.14, §2.18) and KEYMAT for child SAs with and without PFS (§2.17);
// protection of the Encrypted payload with AES-GCM-16 (RFC 5282),
// ChaCha20-Poly1305 (RFC 7634) or AES-CBC with HMAC-SHA2 (RFC 3602,
// RFC 4868); and the AUTH payload for pre-shared keys (§2.15) and digital
// signatures (RFC 7427: RSASSA-PSS, RSASSA-PKCS1-v1_5, ECDSA; RFC 8420
// Ed25519).
//
// Weak algorithms (MODP groups below 2048, SHA-1, MD5, DES, 3DES, ciphers
// with short ICVs) are not implemented at all, so nothing can negotiate
// them. The package does no I/O; randomness comes from an io.Reader the
// caller passes. All functions are safe for concurrent use; a KeyExchange
// or SKCipher value is not (use one per exchange / IKE SA direction).
package ikecrypto
