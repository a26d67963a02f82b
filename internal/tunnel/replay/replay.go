package replay

import "math/bits"

const (
	// MinSize is the smallest window Init sets up, in packets. The issue asks
	// for at least 1024; RFC 4303 §3.4.3 requires at least 32.
	MinSize = 1024
	// MaxSize is the largest window, in packets (an 8 KiB bitmap plus one
	// block).
	MaxSize = 65536

	blockBits = 64
	blockLog  = 6
)

// Window is an anti-replay window of Size() packets: it accepts a sequence
// number that is newer than every accepted one, or at most Size()-1 behind
// the newest and not seen before. Sequence number 0 is never accepted (RFC
// 4303 §3.3.3: the first packet carries 1, also with ESN).
//
// The zero Window behaves as if Init(MinSize) had been called (it allocates
// its ring on the first Accept). A Window is not safe for concurrent use.
type Window struct {
	top  uint64   // highest accepted sequence number; 0 before the first
	size uint64   // window size W in packets, a multiple of 64
	mask uint64   // len(ring)-1
	ring []uint64 // bit s&63 of ring[(s>>6)&mask] is set once s was accepted
}

// Init sets the window size and forgets every sequence number. size is
// rounded up to a multiple of 64 and clamped to [MinSize, MaxSize].
func (w *Window) Init(size int) {
	if size < MinSize {
		size = MinSize
	}
	if size > MaxSize {
		size = MaxSize
	}
	size = (size + blockBits - 1) &^ (blockBits - 1)
	w.size = uint64(size)
	// One block more than the window needs, so that the block being filled at
	// the top never aliases the oldest block still inside the window; rounded
	// to a power of two so that indexing is a mask.
	blocks := 1 << bits.Len(uint(size/blockBits))
	if len(w.ring) == blocks {
		clear(w.ring)
	} else {
		w.ring = make([]uint64, blocks)
	}
	w.mask = uint64(blocks - 1)
	w.top = 0
}

// Size returns the window size in packets (0 before Init).
func (w *Window) Size() int { return int(w.size) }

// Top returns the highest accepted sequence number, 0 if none was accepted.
func (w *Window) Top() uint64 { return w.top }

// Reset forgets every sequence number and keeps the size.
func (w *Window) Reset() {
	clear(w.ring)
	w.top = 0
}

// Restore sets the window as after a takeover from a state copy whose top
// was top: every sequence number up to and including top counts as seen, so
// nothing the old owner may already have accepted can be replayed, at the
// cost of dropping packets that were still in flight out of order.
// Restore(0) is Reset.
func (w *Window) Restore(top uint64) {
	if w.ring == nil {
		w.Init(MinSize)
	}
	w.Reset()
	if top == 0 {
		return
	}
	for i := range w.ring {
		w.ring[i] = ^uint64(0)
	}
	// Bits above top in top's own block stand for future numbers: clear them.
	w.ring[(top>>blockLog)&w.mask] = ^uint64(0) >> (blockBits - 1 - top&(blockBits-1))
	w.top = top
}

// Check reports whether Accept(seq) would succeed, without changing the
// window: seq is not 0, not older than the window and not seen before.
func (w *Window) Check(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= w.size {
		return false
	}
	return w.ring[(seq>>blockLog)&w.mask]&(1<<(seq&(blockBits-1))) == 0
}

// Accept marks seq as seen and moves the window forward if seq is the new
// top. It returns false, and changes nothing, when seq is 0, too old or seen
// before. Call it only after the packet's ICV verified.
func (w *Window) Accept(seq uint64) bool {
	if seq == 0 {
		return false
	}
	if w.ring == nil {
		w.Init(MinSize)
	}
	if seq > w.top {
		cur := w.top >> blockLog
		diff := seq>>blockLog - cur
		if n := uint64(len(w.ring)); diff > n {
			diff = n // a far jump clears the whole ring
		}
		for i := uint64(1); i <= diff; i++ {
			w.ring[(cur+i)&w.mask] = 0
		}
		w.top = seq
	} else if w.top-seq >= w.size {
		return false
	}
	i := (seq >> blockLog) & w.mask
	bit := uint64(1) << (seq & (blockBits - 1))
	if w.ring[i]&bit != 0 {
		return false
	}
	w.ring[i] |= bit
	return true
}
