package replay

import (
	"math"
	"testing"
)

// op is one step of a window scenario: Accept(seq) (or Check when check is
// set) must return want.
type op struct {
	seq   uint64
	want  bool
	check bool
}

func TestWindowScenarios(t *testing.T) {
	const w = 1024
	tests := []struct {
		name string
		size int
		pre  []uint64 // accepted before ops, each must succeed
		ops  []op
	}{
		{name: "first packet", ops: []op{{seq: 1, want: true}}},
		{name: "first packet not 1", ops: []op{{seq: 1000, want: true}, {seq: 1, want: true}}},
		{name: "seq 0 rejected", ops: []op{{seq: 0, want: false, check: true}, {seq: 0, want: false}}},
		{name: "seq 0 rejected after others", pre: []uint64{1, 2}, ops: []op{{seq: 0, want: false}}},
		{name: "duplicate", pre: []uint64{5}, ops: []op{{seq: 5, want: false, check: true}, {seq: 5, want: false}}},
		{name: "duplicate of top after gaps", pre: []uint64{1, 70, 200}, ops: []op{{seq: 200, want: false}, {seq: 70, want: false}, {seq: 1, want: false}}},
		{name: "in order", ops: []op{{seq: 1, want: true}, {seq: 2, want: true}, {seq: 3, want: true}}},
		{name: "reordered inside window", pre: []uint64{10}, ops: []op{{seq: 9, want: true}, {seq: 3, want: true}, {seq: 9, want: false}}},
		{name: "exactly window-1 behind accepted", pre: []uint64{5000}, ops: []op{{seq: 5000 - (w - 1), want: true, check: true}, {seq: 5000 - (w - 1), want: true}}},
		{name: "exactly window behind rejected", pre: []uint64{5000}, ops: []op{{seq: 5000 - w, want: false, check: true}, {seq: 5000 - w, want: false}}},
		{name: "far behind rejected", pre: []uint64{1 << 40}, ops: []op{{seq: 1, want: false}}},
		{name: "far jump ahead clears", pre: []uint64{1, 2, 3, 100, 1000},
			ops: []op{{seq: 1000 + 10*w, want: true}, {seq: 1000 + 9*w + 1, want: true}, {seq: 1000 + 9*w, want: false}}},
		{name: "jump by exactly ring keeps nothing stale", pre: []uint64{64, 65, 127},
			// 64*32 = the ring of a 1024 window: the blocks alias, the old bits must be gone.
			ops: []op{{seq: 64 + 64*32, want: true}, {seq: 65 + 64*32, want: true}, {seq: 127 + 64*32, want: true}, {seq: 127 + 64*32, want: false}}},
		{name: "jump by window keeps edge", pre: []uint64{100},
			ops: []op{{seq: 100 + w - 1, want: true}, {seq: 100, want: false, check: true}, {seq: 99, want: false}, {seq: 101, want: true}}},
		{name: "block boundary", pre: []uint64{63, 64}, ops: []op{{seq: 63, want: false}, {seq: 62, want: true}, {seq: 65, want: true}, {seq: 128, want: true}, {seq: 127, want: true}}},
		{name: "esn crossing 2^32", pre: []uint64{math.MaxUint32 - 1},
			ops: []op{{seq: math.MaxUint32 + 2, want: true}, {seq: math.MaxUint32, want: true}, {seq: math.MaxUint32 + 1, want: true}, {seq: math.MaxUint32 - 1, want: false}, {seq: math.MaxUint32 + 1, want: false}}},
		{name: "top of 64-bit space", pre: []uint64{math.MaxUint64 - 1},
			ops: []op{{seq: math.MaxUint64, want: true}, {seq: math.MaxUint64, want: false}, {seq: math.MaxUint64 - 1, want: false}, {seq: math.MaxUint64 - w + 1, want: true}, {seq: math.MaxUint64 - w, want: false}}},
		{name: "bigger window", size: 4096, pre: []uint64{10000},
			ops: []op{{seq: 10000 - 4095, want: true}, {seq: 10000 - 4096, want: false}}},
		{name: "size rounded to 64", size: 1030, pre: []uint64{10000},
			ops: []op{{seq: 10000 - 1087, want: true}, {seq: 10000 - 1088, want: false}}},
		{name: "size below minimum raised", size: 32, pre: []uint64{10000},
			ops: []op{{seq: 10000 - 1023, want: true}, {seq: 10000 - 1024, want: false}}},
		{name: "max size", size: 1 << 20, pre: []uint64{1 << 20},
			ops: []op{{seq: 1<<20 - (MaxSize - 1), want: true}, {seq: 1<<20 - MaxSize, want: false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var win Window
			win.Init(tc.size)
			for _, s := range tc.pre {
				if !win.Accept(s) {
					t.Fatalf("setup Accept(%d) = false", s)
				}
			}
			for i, o := range tc.ops {
				if o.check {
					top := win.Top()
					if got := win.Check(o.seq); got != o.want {
						t.Fatalf("op %d: Check(%d) = %v, want %v (top %d)", i, o.seq, got, o.want, top)
					}
					if win.Top() != top {
						t.Fatalf("op %d: Check moved top from %d to %d", i, top, win.Top())
					}
					continue
				}
				if got := win.Accept(o.seq); got != o.want {
					t.Fatalf("op %d: Accept(%d) = %v, want %v (top %d)", i, o.seq, got, o.want, win.Top())
				}
			}
		})
	}
}

func TestCheckDoesNotChangeState(t *testing.T) {
	var w Window
	w.Init(1024)
	for _, s := range []uint64{1, 5, 9, 3000} {
		w.Accept(s)
	}
	before := append([]uint64(nil), w.ring...)
	top := w.Top()
	for s := uint64(0); s < 5000; s++ {
		w.Check(s)
	}
	if w.Top() != top {
		t.Fatalf("top moved to %d", w.Top())
	}
	for i := range before {
		if before[i] != w.ring[i] {
			t.Fatalf("ring block %d changed", i)
		}
	}
	// The same numbers still behave as before.
	if !w.Accept(3001) || w.Accept(3000) || !w.Accept(2999) {
		t.Fatal("window state differs after Check")
	}
}

func TestSize(t *testing.T) {
	tests := []struct{ in, want int }{
		{0, MinSize}, {-5, MinSize}, {32, MinSize}, {1024, 1024}, {1025, 1088}, {65536, 65536}, {65537, 65536}, {1 << 30, MaxSize},
	}
	for _, tc := range tests {
		var w Window
		w.Init(tc.in)
		if w.Size() != tc.want {
			t.Errorf("Init(%d): Size() = %d, want %d", tc.in, w.Size(), tc.want)
		}
		if len(w.ring)*64 < w.Size()+64 {
			t.Errorf("Init(%d): ring of %d blocks is too small", tc.in, len(w.ring))
		}
	}
}

func TestZeroWindow(t *testing.T) {
	var w Window
	if w.Check(0) || !w.Check(1) || !w.Check(1<<50) {
		t.Fatal("zero window Check")
	}
	if !w.Accept(7) || w.Accept(7) || w.Size() != MinSize {
		t.Fatal("zero window Accept")
	}
}

func TestReset(t *testing.T) {
	var w Window
	w.Init(2048)
	w.Accept(10)
	w.Accept(5000)
	w.Reset()
	if w.Top() != 0 || w.Size() != 2048 {
		t.Fatalf("after Reset top=%d size=%d", w.Top(), w.Size())
	}
	if !w.Accept(10) || !w.Accept(1) {
		t.Fatal("numbers seen before Reset are rejected after it")
	}
}

func TestRestore(t *testing.T) {
	tests := []uint64{0, 1, 63, 64, 65, 127, 1000, 1 << 33, math.MaxUint64 - 5}
	for _, top := range tests {
		var w Window
		w.Init(1024)
		w.Accept(3) // Restore must drop this state
		w.Restore(top)
		if w.Top() != top {
			t.Fatalf("Restore(%d): top %d", top, w.Top())
		}
		lo := uint64(1)
		if top > 2000 {
			lo = top - 2000
		}
		for s := lo; s <= top && s != 0; s++ {
			if w.Check(s) {
				t.Fatalf("Restore(%d): Check(%d) = true, want false", top, s)
			}
		}
		if top < math.MaxUint64 {
			for s := top + 1; s < top+130 && s > top; s++ {
				if !w.Check(s) {
					t.Fatalf("Restore(%d): Check(%d) = false, want true", top, s)
				}
			}
			// Accepting above top keeps older ones rejected.
			if !w.Accept(top + 2) {
				t.Fatalf("Restore(%d): Accept(top+2) failed", top)
			}
			if top > 0 && w.Accept(top) {
				t.Fatalf("Restore(%d): Accept(top) after advance succeeded", top)
			}
			if !w.Accept(top + 1) {
				t.Fatalf("Restore(%d): Accept(top+1) failed", top)
			}
		}
	}
}

func BenchmarkAcceptInOrder(b *testing.B) {
	var w Window
	w.Init(1024)
	b.ReportAllocs()
	s := uint64(0)
	for b.Loop() {
		s++
		w.Accept(s)
	}
}

func BenchmarkAcceptReordered(b *testing.B) {
	var w Window
	w.Init(1024)
	b.ReportAllocs()
	s := uint64(1000)
	for b.Loop() {
		s += 2
		w.Accept(s)
		w.Accept(s - 1)
	}
}
