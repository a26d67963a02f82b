package config

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. ReadSecret and ReadKey wrap them, so callers can tell a
// problem with the file's permissions or contents from an I/O error with
// errors.Is.
var (
	// ErrSecretMode means a secret file is readable or writable by group or
	// other; the operator must chmod 600 it. The file was not read.
	ErrSecretMode = errors.New("secret file is accessible by group/other")
	// ErrSecretEmpty means a secret file exists but holds no secret.
	ErrSecretEmpty = errors.New("secret file is empty")
	// ErrNotRegular means a path that must name a regular file names
	// something else (a directory, a device, a socket).
	ErrNotRegular = errors.New("not a regular file")
	// ErrKeyLength means a key file does not hold exactly CipherKeyLen bytes
	// (raw or hex) for its cipher.
	ErrKeyLength = errors.New("wrong key length")
	// ErrUnknownCipher means a Cipher value is not one of the defined ones.
	ErrUnknownCipher = errors.New("unknown cipher")
)

// Error is one problem found in a config file. Line and Column are 1-based
// and point at the offending value (or, for a missing field, at the mapping
// that lacks it); they are 0 when the problem has no place in the file.
// Field is the path of the field ("tunnels[0].remote"), empty for problems
// with the document as a whole.
type Error struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Field  string `json:"field"`
	Msg    string `json:"msg"`
}

// Error formats e as "file:line:column: field: msg", leaving out the parts
// that are empty or zero.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors returns every *Error inside err, which is usually an errors.Join of
// them as returned by Load and Parse, in order. It returns nil when err is
// nil or holds no *Error (an I/O error reading the file, for instance).
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		switch x := err.(type) {
		case nil:
		case *Error:
			out = append(out, x)
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}
