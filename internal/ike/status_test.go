package ike

import (
	"strings"
	"testing"
	"time"
)

func TestWriteSAs(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	sas := []SAInfo{{
		Peer: "tun0", State: "ESTABLISHED", Initiator: true, SPIi: "0102030405060708", SPIr: "1112131415161718",
		Local: "198.51.100.1:4500", Remote: "203.0.113.1:4500", LocalID: "@a.example.net", RemoteID: "@b.example.net",
		Proposal: "aes256gcm16-prfsha384-x25519", NATRemote: true,
		Established: now.Add(-time.Minute), RekeyAt: now.Add(time.Hour), ExpireAt: now.Add(2 * time.Hour),
		Children: []ChildInfo{{InSPI: "c0000001", OutSPI: "c0000002", Proposal: "aes256gcm16-x25519", Cipher: "aes-gcm-256", Mode: "gre",
			LocalTS: []string{"198.51.100.1[47]"}, RemoteTS: []string{"203.0.113.1[47]"}, Active: true,
			Established: now.Add(-30 * time.Second), RekeyAt: now.Add(50 * time.Minute), ExpireAt: now.Add(55 * time.Minute)}},
	}}
	var b strings.Builder
	if err := WriteSAs(&b, sas, now); err != nil {
		t.Fatal(err)
	}
	want := `tun0: ESTABLISHED, IKEv2, 0102030405060708_i* 1112131415161718_r
  local  '@a.example.net' @ 198.51.100.1:4500
  remote '@b.example.net' @ 203.0.113.1:4500 (NAT-T)
  aes256gcm16-prfsha384-x25519
  established 1m0s ago, rekeying in 1h0m0s, expires in 2h0m0s
  tun0: INSTALLED, TRANSPORT-in-UDP (GRE), ESP:aes256gcm16-x25519
    in  c0000001, out c0000002
    installed 30s ago, rekeying in 50m0s, expires in 55m0s
    local  198.51.100.1[47]
    remote 203.0.113.1[47]
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	for _, tc := range []struct {
		name                      string
		natLocal, natRemote, fake bool
		want                      string
	}{
		{"no NAT", false, false, false, "  remote '@b.example.net' @ 203.0.113.1:4500\n"},
		{"local behind NAT", true, false, false, "  remote '@b.example.net' @ 203.0.113.1:4500 (NAT-T, local behind NAT)\n"},
		{"forced encapsulation", false, false, true, "  remote '@b.example.net' @ 203.0.113.1:4500 (UDP encapsulation forced)\n"},
		{"NAT wins over forced", false, true, true, "  remote '@b.example.net' @ 203.0.113.1:4500 (NAT-T)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sas[0]
			s.NATLocal, s.NATRemote, s.NATFake, s.Children = tc.natLocal, tc.natRemote, tc.fake, nil
			var b strings.Builder
			if err := WriteSAs(&b, []SAInfo{s}, now); err != nil {
				t.Fatal(err)
			}
			if lines := strings.SplitAfter(b.String(), "\n"); len(lines) < 3 || lines[2] != tc.want {
				t.Fatalf("got\n%s\nwant line 3 %q", b.String(), tc.want)
			}
		})
	}
}
