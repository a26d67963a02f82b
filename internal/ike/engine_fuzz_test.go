package ike

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzHandlePacket feeds arbitrary datagrams to a responder engine on both
// ports. Seeds are the datagrams of a real exchange. Invariants: no panic,
// no child SA without a completed exchange, and at most one answer per
// datagram (no amplification).
func FuzzHandlePacket(f *testing.F) {
	n, _, _ := defaultPair(f)
	n.advance(time.Second, 100*time.Millisecond)
	for _, d := range n.sent {
		f.Add(d.data, d.to.Port() == 4500)
	}
	f.Add([]byte{0xff}, true)
	f.Add([]byte{0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, nat bool) {
		var out int
		cb := pskConfig(addrB, addrA, "@b.example.net", "@a.example.net", false)
		ins := newRecInstaller()
		e, err := NewEngine(cb, Deps{Send: func([]byte, netip.AddrPort, netip.AddrPort) { out++ }, Installer: ins})
		if err != nil {
			t.Fatal(err)
		}
		port := uint16(500)
		if nat {
			port = 4500
		}
		now := time.Unix(1_800_000_000, 0)
		e.HandlePacket(now, b, netip.AddrPortFrom(addrB, port), netip.AddrPortFrom(addrA, port))
		e.Tick(now.Add(time.Second))
		if len(ins.installed) != 0 {
			t.Fatal("child SA from a single datagram")
		}
		if out > 1 {
			t.Fatalf("%d datagrams sent in answer to one", out)
		}
	})
}
