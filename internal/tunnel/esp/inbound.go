package esp

import (
	"crypto/cipher"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/havpn/havpn/internal/tunnel/replay"
)

// Inbound is the receiving side of an ESP SA. It is safe for concurrent
// Open; the only lock is mu around the replay window, held for the window
// check and the window update, never during decryption.
type Inbound struct {
	aead   cipher.AEAD
	cipher Cipher
	spi    uint32
	esn    bool
	salt   [saltLen]byte
	keymat []byte

	mu  sync.Mutex // guards win
	win replay.Window

	packets atomic.Uint64
	bytes   atomic.Uint64
	replays atomic.Uint64
	auth    atomic.Uint64
	short   atomic.Uint64
	padding atomic.Uint64

	scratch sync.Pool // of *scratch
}

// NewInbound returns an inbound SA. key is the cipher key followed by the
// 4-byte salt (c.KeyLen() bytes); it is copied. window is the anti-replay
// window in packets: it is rounded up to a multiple of 64 and clamped to
// replay.MinSize..replay.MaxSize (1024..65536).
func NewInbound(c Cipher, spi uint32, key []byte, esn bool, window int) (*Inbound, error) {
	a, salt, err := c.newAEAD(key)
	if err != nil {
		return nil, err
	}
	in := &Inbound{aead: a, cipher: c, spi: spi, esn: esn, salt: salt, keymat: append([]byte(nil), key...)}
	in.scratch.New = newScratch
	in.win.Init(window)
	return in, nil
}

// NewInboundFromState returns an inbound SA restored from s. Every sequence
// number up to s.Seq counts as already received (replay.Window.Restore): a
// standby taking over can never accept a packet the old owner accepted,
// at the price of dropping packets older than s.Seq that were still in
// flight.
func NewInboundFromState(s State) (*Inbound, error) {
	in, err := NewInbound(s.Cipher, s.SPI, s.Key, s.ESN, s.Window)
	if err != nil {
		return nil, err
	}
	in.win.Restore(s.Seq)
	return in, nil
}

// SPI returns the SA's SPI.
func (in *Inbound) SPI() uint32 { return in.spi }

// Open authenticates and decrypts the ESP packet pkt (from the SPI to the
// end of the ICV) in place. In order: length, SPI, replay pre-check (RFC
// 4303 §3.4.3), ICV verification and decryption, replay window update, and
// the padding check. It returns the inner payload as a subslice of pkt and
// the next header (4, 41, 47, 59 = dummy packet to discard, or whatever the
// peer sent). It does not allocate. Errors: ErrShort, ErrSPI, ErrReplay,
// ErrAuth, ErrPadding; on ErrAuth and ErrPadding the contents of pkt after
// the header are undefined.
func (in *Inbound) Open(pkt []byte) (payload []byte, nextHeader byte, err error) {
	if len(pkt) < minPacket {
		in.short.Add(1)
		return nil, 0, ErrShort
	}
	if binary.BigEndian.Uint32(pkt) != in.spi {
		return nil, 0, ErrSPI
	}
	low := binary.BigEndian.Uint32(pkt[4:])
	seq := uint64(low)
	in.mu.Lock()
	if in.esn {
		seq = InferSeq(in.win.Top(), in.win.Size(), low)
	}
	ok := in.win.Check(seq)
	in.mu.Unlock()
	if !ok {
		in.replays.Add(1)
		return nil, 0, ErrReplay
	}

	s := in.scratch.Get().(*scratch)
	copy(s.nonce[:saltLen], in.salt[:])
	copy(s.nonce[saltLen:], pkt[8:HeaderLen])
	aad := pkt[:8] // SPI || seq
	if in.esn {
		binary.BigEndian.PutUint32(s.aad[0:], in.spi)
		binary.BigEndian.PutUint64(s.aad[4:], seq)
		aad = s.aad[:12] // SPI || seq high || seq low
	}
	ct := pkt[HeaderLen:]
	pt, err := in.aead.Open(ct[:0], s.nonce[:], ct, aad)
	in.scratch.Put(s)
	if err != nil {
		in.auth.Add(1)
		return nil, 0, ErrAuth
	}

	in.mu.Lock()
	ok = in.win.Accept(seq)
	in.mu.Unlock()
	if !ok { // a copy of this packet won the race since the pre-check
		in.replays.Add(1)
		return nil, 0, ErrReplay
	}

	// RFC 4303 §2.4: payload | 1, 2, ..., pad | pad length | next header.
	nh := pt[len(pt)-1]
	pad := int(pt[len(pt)-2])
	end := len(pt) - 2 - pad
	if end < 0 {
		in.padding.Add(1)
		return nil, 0, ErrPadding
	}
	for i, b := range pt[end : end+pad] {
		if b != byte(i+1) {
			in.padding.Add(1)
			return nil, 0, ErrPadding
		}
	}
	in.packets.Add(1)
	in.bytes.Add(uint64(end))
	return pt[:end], nh, nil
}

// Export returns the SA as plain data (a copy of the key included); Seq is
// the highest accepted sequence number.
func (in *Inbound) Export() State {
	in.mu.Lock()
	top, size := in.win.Top(), in.win.Size()
	in.mu.Unlock()
	return State{Cipher: in.cipher, SPI: in.spi, Key: append([]byte(nil), in.keymat...), ESN: in.esn, Seq: top, Window: size}
}

// Stats returns the SA's counters.
func (in *Inbound) Stats() Stats {
	return Stats{
		Packets: in.packets.Load(), Bytes: in.bytes.Load(), Replay: in.replays.Load(),
		Auth: in.auth.Load(), Short: in.short.Load(), Padding: in.padding.Load(),
	}
}
