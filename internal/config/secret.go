package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// maxSecretSize bounds how much of a secret file is read; no secret havpn
// uses is anywhere near it.
const maxSecretSize = 64 << 10

// secretError is a problem with a secret file, phrased without the file's
// name (the caller adds it), wrapping one of the sentinels.
type secretError struct {
	msg string
	err error
}

func (e *secretError) Error() string { return e.msg }
func (e *secretError) Unwrap() error { return e.err }

// CipherKeyLen returns the number of key bytes an ESP SA with cipher c needs,
// the key followed by the 4-byte salt (RFC 4106 §8.1, RFC 7634 §2): 20 for
// aes-gcm-128, 36 for aes-gcm-256 and chacha20-poly1305. It returns 0 for an
// unknown cipher.
func CipherKeyLen(c Cipher) int {
	switch c {
	case CipherAESGCM128:
		return 16 + 4
	case CipherAESGCM256:
		return 32 + 4
	case CipherChaCha20Poly1305:
		return 32 + 4
	}
	return 0
}

// ReadSecret reads a secret file: it must be a regular file (symlinks are
// followed), not accessible by group or other (mode & 0o077 == 0, else
// ErrSecretMode and the contents are not read), and not empty (ErrSecretEmpty).
// The contents are returned as they are, trailing newline included.
func ReadSecret(path string) ([]byte, error) {
	b, err := readSecret(path)
	if err != nil {
		return nil, fmt.Errorf("reading secret file %s: %w", path, err)
	}
	return b, nil
}

// readSecret is ReadSecret with errors that do not name the file.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileError(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileError(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &secretError{"is not a regular file", ErrNotRegular}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		how := "gives group/other access"
		if perm&0o044 != 0 {
			how = "is readable by group/other"
		}
		return nil, &secretError{fmt.Sprintf("mode %04o %s; chmod 600 it", perm, how), ErrSecretMode}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, fileError(err)
	}
	if len(b) > maxSecretSize {
		return nil, fmt.Errorf("is larger than %d bytes", maxSecretSize)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, &secretError{"is empty", ErrSecretEmpty}
	}
	return b, nil
}

// fileError rephrases an *fs.PathError without the path, keeping it in the
// chain for errors.Is (fs.ErrNotExist, fs.ErrPermission).
func fileError(err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &secretError{"does not exist", err}
	case errors.Is(err, fs.ErrPermission):
		return &secretError{"cannot be read: permission denied", err}
	case errors.As(err, &pe):
		return &secretError{"cannot be read: " + pe.Err.Error(), err}
	}
	return err
}

// ReadKey reads a manual SA key file (ReadSecret) holding the key and salt
// for cipher c: either exactly CipherKeyLen(c) raw bytes, or that many bytes
// as hex digits (an optional 0x prefix and surrounding white space are
// ignored). It fails with ErrKeyLength when the length is wrong and with
// ErrUnknownCipher when c is not a known cipher.
func ReadKey(path string, c Cipher) ([]byte, error) {
	k, err := readKey(path, c)
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	return k, nil
}

// readKey is ReadKey with errors that do not name the file.
func readKey(path string, c Cipher) ([]byte, error) {
	n := CipherKeyLen(c)
	if n == 0 {
		return nil, fmt.Errorf("cipher %q: %w", c, ErrUnknownCipher)
	}
	b, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	return decodeKey(b, c)
}

// decodeKey turns key file contents into key bytes for cipher c.
func decodeKey(b []byte, c Cipher) ([]byte, error) {
	n := CipherKeyLen(c)
	s := strings.TrimSpace(string(b))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if isHex(s) {
		if len(s) == 2*n {
			k, err := hex.DecodeString(s)
			if err == nil {
				return k, nil
			}
		}
		if len(b) != n {
			return nil, &secretError{fmt.Sprintf("holds %d hex digits, %s needs %d (%d bytes: key and salt)", len(s), c, 2*n, n), ErrKeyLength}
		}
	}
	if len(b) != n {
		return nil, &secretError{fmt.Sprintf("holds %d bytes, %s needs %d (key and salt) raw or as %d hex digits", len(b), c, n, 2*n), ErrKeyLength}
	}
	return append([]byte(nil), b...), nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
