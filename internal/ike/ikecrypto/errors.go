package ikecrypto

import "errors"

// Errors returned by this package (wrapped; test with errors.Is).
var (
	// ErrUnsupported means an algorithm ID that havpn does not implement
	// (often deliberately: it is weak). Do not negotiate it.
	ErrUnsupported = errors.New("unsupported algorithm")
	// ErrPublicKey means the peer's key exchange data is malformed or not a
	// valid point; answer INVALID_SYNTAX and drop the exchange.
	ErrPublicKey = errors.New("invalid key exchange public value")
	// ErrAuth means an integrity check or AEAD tag failed; drop the message
	// silently (RFC 7296 §2.21.2).
	ErrAuth = errors.New("integrity check failed")
	// ErrPadding means decrypted padding is inconsistent; treat like ErrAuth.
	ErrPadding = errors.New("invalid padding")
	// ErrSignature means an AUTH payload did not verify; answer
	// AUTHENTICATION_FAILED.
	ErrSignature = errors.New("authentication data did not verify")
)
