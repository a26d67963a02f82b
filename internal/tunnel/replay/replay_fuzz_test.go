package replay

import (
	"encoding/binary"
	"testing"
)

// refWindow is the slow reference: a set of seen numbers, RFC 4303 §3.4.3
// read literally.
type refWindow struct {
	seen     map[uint64]bool
	top      uint64
	size     uint64
	restored uint64 // every seq <= restored counts as seen
}

func (r *refWindow) check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > r.top {
		return true
	}
	if r.top-seq >= r.size {
		return false
	}
	return !r.seen[seq] && seq > r.restored
}

func (r *refWindow) accept(seq uint64) bool {
	if !r.check(seq) {
		return false
	}
	r.seen[seq] = true
	if seq > r.top {
		r.top = seq
	}
	return true
}

// FuzzReplay runs a fuzzed sequence of operations on Window and on the map
// based reference and requires identical answers. Each operation takes 4
// bytes: kind, then a 24-bit distance; kinds pick a sequence number around
// the current top, far ahead, a Check, a Reset or a Restore.
func FuzzReplay(f *testing.F) {
	f.Add(uint16(0), []byte{0, 0, 0, 1, 0, 0, 0, 2, 1, 0, 0, 1})
	f.Add(uint16(1024), []byte{0, 0, 4, 0, 1, 0, 3, 255, 1, 0, 4, 0, 1, 0, 3, 255})
	f.Add(uint16(4096), []byte{2, 0, 1, 0, 1, 0, 0, 64, 1, 0, 0, 63, 3, 0, 0, 0, 0, 0, 0, 5})
	f.Add(uint16(2000), []byte{5, 0, 16, 0, 1, 0, 0, 1, 4, 0, 0, 3, 0, 0, 0, 1})
	f.Add(uint16(64), []byte{6, 255, 255, 255, 0, 0, 0, 1, 1, 0, 0, 1})
	f.Fuzz(func(t *testing.T, size uint16, prog []byte) {
		var w Window
		w.Init(int(size))
		ref := &refWindow{seen: map[uint64]bool{}, size: uint64(w.Size())}
		for len(prog) >= 4 {
			kind := prog[0] % 7
			d := uint64(binary.BigEndian.Uint32(prog) & 0xffffff)
			prog = prog[4:]
			var seq uint64
			switch kind {
			case 0: // ahead of top
				seq = ref.top + d
			case 1, 4: // behind top (4: Check only)
				seq = ref.top - d
				if d > ref.top {
					seq = 0
				}
			case 2: // far ahead, several rings
				seq = ref.top + d<<8
			case 3:
				w.Reset()
				ref = &refWindow{seen: map[uint64]bool{}, size: ref.size}
				continue
			case 5:
				top := ref.top + d
				w.Restore(top)
				ref = &refWindow{seen: map[uint64]bool{}, size: ref.size, top: top, restored: top}
				continue
			case 6: // near the end of the 64-bit space
				seq = ^uint64(0) - d
			}
			if kind == 4 {
				if got, want := w.Check(seq), ref.check(seq); got != want {
					t.Fatalf("Check(%d) = %v, reference %v (top %d size %d)", seq, got, want, ref.top, ref.size)
				}
				continue
			}
			c := w.Check(seq)
			got, want := w.Accept(seq), ref.accept(seq)
			if got != want {
				t.Fatalf("Accept(%d) = %v, reference %v (top %d size %d)", seq, got, want, ref.top, ref.size)
			}
			if c != got {
				t.Fatalf("Check(%d) = %v but Accept = %v", seq, c, got)
			}
			if w.Top() != ref.top {
				t.Fatalf("top %d, reference %d", w.Top(), ref.top)
			}
		}
	})
}
