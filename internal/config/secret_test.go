package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCipherKeyLen(t *testing.T) {
	tests := []struct {
		c    Cipher
		want int
	}{
		{CipherAESGCM128, 20},
		{CipherAESGCM256, 36},
		{CipherChaCha20Poly1305, 36},
		{"aes-cbc", 0},
		{"", 0},
	}
	for _, tc := range tests {
		t.Run(string(tc.c), func(t *testing.T) {
			if got := CipherKeyLen(tc.c); got != tc.want {
				t.Errorf("CipherKeyLen(%q) = %d, want %d", tc.c, got, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name string, data []byte, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		want    []byte
		wantErr error  // errors.Is target, nil for success
		msg     string // in the error text
	}{
		{"ok", writeFile(t, dir, "ok", []byte("secret\n"), 0o600), []byte("secret\n"), nil, ""},
		{"owner read only", writeFile(t, dir, "ro", []byte("s"), 0o400), []byte("s"), nil, ""},
		{"group readable", writeFile(t, dir, "g", []byte("s"), 0o640), nil, ErrSecretMode, "mode 0640 is readable by group/other; chmod 600 it"},
		{"world readable", writeFile(t, dir, "w", []byte("s"), 0o644), nil, ErrSecretMode, "mode 0644 is readable by group/other"},
		{"group writable", writeFile(t, dir, "gw", []byte("s"), 0o620), nil, ErrSecretMode, "mode 0620 gives group/other access"},
		{"empty", writeFile(t, dir, "e", []byte(" \n"), 0o600), nil, ErrSecretEmpty, "is empty"},
		{"missing", filepath.Join(dir, "nope"), nil, fs.ErrNotExist, "does not exist"},
		{"directory", dir, nil, ErrNotRegular, "is not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSecret(tc.path)
			if tc.wantErr == nil {
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("ReadSecret = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ReadSecret error = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the file and say %q", err, tc.msg)
			}
			if got != nil {
				t.Errorf("contents returned with the error")
			}
		})
	}
}

func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	key36 := bytes.Repeat([]byte{0xab}, 36)
	key20 := bytes.Repeat([]byte{0x01}, 20)
	hex36 := strings.Repeat("ab", 36)
	raw := []byte("0123456789abcdefghijklmnopqrstuvwxyz") // 36 raw bytes, not hex
	tests := []struct {
		name    string
		data    []byte
		cipher  Cipher
		want    []byte
		wantErr error
		msg     string
	}{
		{"hex", []byte(hex36 + "\n"), CipherAESGCM256, key36, nil, ""},
		{"hex upper with 0x", []byte("0x" + strings.ToUpper(hex36)), CipherChaCha20Poly1305, key36, nil, ""},
		{"hex 128", []byte(strings.Repeat("01", 20)), CipherAESGCM128, key20, nil, ""},
		{"raw", raw, CipherAESGCM256, raw, nil, ""},
		{"short hex", []byte(strings.Repeat("ab", 32)), CipherAESGCM256, nil, ErrKeyLength, "holds 64 hex digits, aes-gcm-256 needs 72 (36 bytes: key and salt)"},
		{"long hex for 128", []byte(hex36), CipherAESGCM128, nil, ErrKeyLength, "holds 72 hex digits, aes-gcm-128 needs 40"},
		{"short raw", []byte("short-but-not-hex!"), CipherAESGCM256, nil, ErrKeyLength, "holds 18 bytes, aes-gcm-256 needs 36 (key and salt) raw or as 72 hex digits"},
		{"unknown cipher", []byte(hex36), "des", nil, ErrUnknownCipher, `cipher "des"`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, string(rune('a'+i)), tc.data, 0o600)
			got, err := ReadKey(p, tc.cipher)
			if tc.wantErr == nil {
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("ReadKey = %x, %v; want %x", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ReadKey error = %v, want %v with %q", err, tc.wantErr, tc.msg)
			}
		})
	}
	t.Run("mode", func(t *testing.T) {
		p := writeFile(t, dir, "open", []byte(hex36), 0o644)
		if _, err := ReadKey(p, CipherAESGCM256); !errors.Is(err, ErrSecretMode) {
			t.Errorf("ReadKey of a 0644 file: %v, want ErrSecretMode", err)
		}
	})
}
