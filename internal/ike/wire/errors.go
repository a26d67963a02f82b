package wire

import "errors"

// Decoding errors. All are returned wrapped with the payload or field that
// failed; test with errors.Is. A message that fails to decode is dropped
// (RFC 7296 §2.21.1: an unauthenticated malformed message gets no answer).
var (
	// ErrShort means the buffer ends before a header or a field does.
	ErrShort = errors.New("truncated")
	// ErrLength means a length field disagrees with the bytes present or
	// with the minimum size of its structure.
	ErrLength = errors.New("bad length")
	// ErrVersion means the major version is not 2; answer with
	// INVALID_MAJOR_VERSION if the message was a request.
	ErrVersion = errors.New("unsupported IKE major version")
	// ErrSyntax means a field holds a value the RFC forbids (for example an
	// SK payload that is not the last payload, a Last Substruc value other
	// than 0/2/3, or an address range of the wrong family).
	ErrSyntax = errors.New("invalid syntax")
)
