package fib

import (
	"net/netip"
	"testing"

	"github.com/havpn/havpn/internal/config"
)

// nopKernel accepts every op.
type nopKernel struct{ Kernel }

func (nopKernel) Apply([]Op) []error { return nil }

func TestNextHopSetsShared(t *testing.T) {
	r, err := New(nopKernel{}, config.FIB{Table: 254, Protocol: 186, Multipath: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := []NextHop{{Gateway: netip.MustParseAddr("172.16.0.2")}}
	b := []NextHop{{Gateway: netip.MustParseAddr("172.16.0.6")}, {Gateway: netip.MustParseAddr("172.16.0.2")}} // unsorted
	var changes []Change
	for i := range 1000 {
		hops := a
		if i%2 == 1 {
			hops = b
		}
		changes = append(changes, Change{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), NextHops: hops})
	}
	if err := r.Update(changes); err != nil {
		t.Fatal(err)
	}
	live := func() int {
		n := 0
		for _, s := range r.sets[1:] {
			if s.refs > 0 {
				n++
			}
		}
		return n
	}
	if n := live(); n != 2 || len(r.setIDs) != 2 {
		t.Fatalf("%d live next-hop sets (%d keys) for 2 distinct sets", n, len(r.setIDs))
	}
	// want and have both reference a set: 1000 routes, 2 refs each.
	if got := r.sets[1].refs + r.sets[2].refs; got != 2000 {
		t.Fatalf("references = %d, want 2000", got)
	}
	for i := range changes {
		changes[i].NextHops = a
	}
	if err := r.Update(changes); err != nil {
		t.Fatal(err)
	}
	if n := live(); n != 1 {
		t.Fatalf("%d live sets after moving everything to one set", n)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := live(); n != 0 || len(r.setIDs) != 0 || len(r.routes) != 0 {
		t.Fatalf("after Flush: %d live sets, %d keys, %d routes", n, len(r.setIDs), len(r.routes))
	}
	if s := r.Stats(); s != (Stats{}) {
		t.Fatalf("stats after Flush = %+v", s)
	}
}
