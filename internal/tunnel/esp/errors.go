package esp

import "errors"

// Errors returned per packet. They are never wrapped, so the dataplane can
// compare them with == and count each drop reason; none of them means the SA
// is broken, except ErrSeqExhausted.
var (
	// ErrShort: the packet is shorter than an ESP header, trailer and ICV, or
	// Seal's buffer cannot hold the sealed packet. Drop the packet.
	ErrShort = errors.New("esp: packet too short")
	// ErrSPI: the packet's SPI is not the SA's. Look the SA up by SPIOf first.
	ErrSPI = errors.New("esp: SPI does not match the SA")
	// ErrReplay: the sequence number was seen before or is older than the
	// anti-replay window. Drop the packet (normal under heavy reordering).
	ErrReplay = errors.New("esp: replayed or too old sequence number")
	// ErrAuth: the ICV did not verify (forged, corrupted, wrong key, or with
	// ESN a wrongly inferred high half). Drop the packet.
	ErrAuth = errors.New("esp: integrity check failed")
	// ErrPadding: an authenticated packet has a pad length beyond the
	// payload or pad bytes other than 1, 2, 3, ... (RFC 4303 §2.4). Drop it.
	ErrPadding = errors.New("esp: invalid padding")
	// ErrSeqExhausted: the outbound SA has sent its last sequence number
	// (2^32-1 without ESN, RFC 4303 §3.3.3; 2^64-1 with ESN). The counter
	// never wraps; the SA must be rekeyed and no packet can be sent on it.
	ErrSeqExhausted = errors.New("esp: sequence number space exhausted, rekey the SA")
	// ErrCipher: the cipher name or value is not one of the supported ones.
	ErrCipher = errors.New("esp: unknown cipher")
	// ErrKey: the key is not Cipher.KeyLen() bytes (key plus 4-byte salt).
	ErrKey = errors.New("esp: wrong key length")
)
