package esp_test

import (
	"errors"
	"testing"

	"github.com/havpn/havpn/internal/tunnel/esp"
)

func TestParseCipher(t *testing.T) {
	tests := []struct {
		in     string
		want   esp.Cipher
		keyLen int
		err    bool
	}{
		{"aes-gcm-128", esp.AESGCM128, 20, false},
		{"aes-gcm-256", esp.AESGCM256, 36, false},
		{"chacha20-poly1305", esp.ChaCha20Poly1305, 36, false},
		{"AES-GCM-128", 0, 0, true},
		{"aes-gcm-192", 0, 0, true},
		{"", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			c, err := esp.ParseCipher(tc.in)
			if tc.err {
				if !errors.Is(err, esp.ErrCipher) {
					t.Fatalf("ParseCipher(%q) error %v, want ErrCipher", tc.in, err)
				}
				return
			}
			if err != nil || c != tc.want || c.KeyLen() != tc.keyLen || c.String() != tc.in {
				t.Fatalf("ParseCipher(%q) = %v (%d, %q), %v", tc.in, c, c.KeyLen(), c.String(), err)
			}
		})
	}
	if esp.Cipher(0).KeyLen() != 0 || esp.Cipher(9).String() != "Cipher(9)" {
		t.Fatal("invalid cipher values")
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		c    esp.Cipher
		key  int
		want error
	}{
		{"unknown cipher", 0, 20, esp.ErrCipher},
		{"key without salt", esp.AESGCM128, 16, esp.ErrKey},
		{"aes-256 with aes-128 key", esp.AESGCM256, 20, esp.ErrKey},
		{"chacha short", esp.ChaCha20Poly1305, 32, esp.ErrKey},
		{"empty", esp.ChaCha20Poly1305, 0, esp.ErrKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := esp.NewOutbound(tc.c, 0x100, make([]byte, tc.key), false); !errors.Is(err, tc.want) {
				t.Fatalf("NewOutbound: %v, want %v", err, tc.want)
			}
			if _, err := esp.NewInbound(tc.c, 0x100, make([]byte, tc.key), false, 1024); !errors.Is(err, tc.want) {
				t.Fatalf("NewInbound: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestKeyCopied(t *testing.T) {
	k := key(esp.AESGCM128, 1)
	out, err := esp.NewOutbound(esp.AESGCM128, 0x1001, k, false)
	if err != nil {
		t.Fatal(err)
	}
	_, in := pair(t, esp.AESGCM128, false)
	k[0] ^= 0xff // the caller reusing its buffer must not change the SA
	if _, _, err := in.Open(seal(t, out, ipv4(30), 4)); err != nil {
		t.Fatalf("SA changed with the caller's key buffer: %v", err)
	}
}

func TestClassifyUDP(t *testing.T) {
	ike := make([]byte, 4+28)
	esp8 := []byte{0, 0, 1, 0, 0, 0, 0, 1}
	tests := []struct {
		name string
		in   []byte
		want esp.UDPKind
	}{
		{"keepalive", []byte{0xff}, esp.KindKeepalive},
		{"one other byte", []byte{0x00}, esp.KindInvalid},
		{"empty", nil, esp.KindInvalid},
		{"two bytes ff", []byte{0xff, 0xff}, esp.KindInvalid},
		{"marker only", []byte{0, 0, 0, 0}, esp.KindInvalid},
		{"marker and short IKE", make([]byte, 4+27), esp.KindInvalid},
		{"ike", ike, esp.KindIKE},
		{"esp minimal", esp8, esp.KindESP},
		{"esp short", esp8[:7], esp.KindInvalid},
		{"spi 1", []byte{0, 0, 0, 1, 0, 0, 0, 1}, esp.KindInvalid},
		{"spi 255", []byte{0, 0, 0, 255, 0, 0, 0, 1}, esp.KindInvalid},
		{"spi 256", []byte{0, 0, 1, 0, 9, 9, 9, 9, 9}, esp.KindESP},
		{"spi ff...", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, esp.KindESP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := esp.ClassifyUDP(tc.in); got != tc.want {
				t.Fatalf("ClassifyUDP(%x) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestSPIOf(t *testing.T) {
	tests := []struct {
		in   []byte
		spi  uint32
		ok   bool
		name string
	}{
		{[]byte{1, 2, 3, 4, 0, 0, 0, 1}, 0x01020304, true, "ok"},
		{[]byte{1, 2, 3, 4, 0, 0, 0}, 0, false, "short"},
		{[]byte{0, 0, 0, 0xff, 0, 0, 0, 1}, 255, false, "reserved"},
		{nil, 0, false, "nil"},
	}
	for _, tc := range tests {
		spi, ok := esp.SPIOf(tc.in)
		if spi != tc.spi || ok != tc.ok {
			t.Errorf("%s: SPIOf = %#x, %v; want %#x, %v", tc.name, spi, ok, tc.spi, tc.ok)
		}
	}
}
