package esp

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// Outbound is the sending side of an ESP SA. It is safe for concurrent
// Seal: each call takes the next sequence number atomically (packets sealed
// concurrently may leave in a different order, which the peer's replay
// window absorbs).
type Outbound struct {
	aead   cipher.AEAD
	cipher Cipher
	spi    uint32
	esn    bool
	salt   [saltLen]byte
	keymat []byte // copy of key || salt, for Export

	seq     atomic.Uint64 // last sequence number used; 0 before the first Seal
	packets atomic.Uint64
	bytes   atomic.Uint64
	short   atomic.Uint64

	scratch sync.Pool // of *scratch
}

// NewOutbound returns an outbound SA. key is the cipher key followed by the
// 4-byte salt (c.KeyLen() bytes); it is copied. esn selects 64-bit extended
// sequence numbers (RFC 4304). The first packet gets sequence number 1.
func NewOutbound(c Cipher, spi uint32, key []byte, esn bool) (*Outbound, error) {
	a, salt, err := c.newAEAD(key)
	if err != nil {
		return nil, err
	}
	o := &Outbound{aead: a, cipher: c, spi: spi, esn: esn, salt: salt, keymat: append([]byte(nil), key...)}
	o.scratch.New = newScratch
	return o, nil
}

// NewOutboundFromState returns an outbound SA that continues from s: the
// next packet gets s.Seq+1. After a takeover, call SkipSeq as well, since the
// state copy lags the sequence numbers the old owner already used.
func NewOutboundFromState(s State) (*Outbound, error) {
	o, err := NewOutbound(s.Cipher, s.SPI, s.Key, s.ESN)
	if err != nil {
		return nil, err
	}
	if s.Seq > o.limit() {
		return nil, fmt.Errorf("restoring outbound SA %#x: sequence number %d beyond %d: %w", s.SPI, s.Seq, o.limit(), ErrSeqExhausted)
	}
	o.seq.Store(s.Seq)
	return o, nil
}

// SPI returns the SA's SPI.
func (o *Outbound) SPI() uint32 { return o.spi }

// limit is the last sequence number the SA may send.
func (o *Outbound) limit() uint64 {
	if o.esn {
		return math.MaxUint64
	}
	return math.MaxUint32
}

// nextSeq takes the next sequence number; it never wraps.
func (o *Outbound) nextSeq() (uint64, error) {
	limit := o.limit()
	for {
		cur := o.seq.Load()
		if cur >= limit {
			return 0, ErrSeqExhausted
		}
		if o.seq.CompareAndSwap(cur, cur+1) {
			return cur + 1, nil
		}
	}
}

// SkipSeq moves the sequence counter n numbers ahead, so that a new owner of
// the SA never reuses a number (and so an IV) the old owner may have sent
// after the last state sync. It saturates at the last number, after which
// Seal returns ErrSeqExhausted.
func (o *Outbound) SkipSeq(n uint64) {
	limit := o.limit()
	for {
		cur := o.seq.Load()
		next := cur + n
		if next < cur || next > limit {
			next = limit
		}
		if o.seq.CompareAndSwap(cur, next) {
			return
		}
	}
}

// Seal encrypts in place. buf[HeaderLen:HeaderLen+n] holds the payload;
// cap(buf) >= HeaderLen+n+MaxTrailer always suffices (the exact need is
// n+Overhead(n)). Seal writes SPI, sequence number and IV
// into buf[:HeaderLen], appends padding, pad length, nextHeader and the ICV,
// and returns the packet length; the packet is buf[:length]. It does not
// allocate. Errors: ErrShort (buffer too small, counted), ErrSeqExhausted.
func (o *Outbound) Seal(buf []byte, n int, nextHeader byte) (int, error) {
	if n < 0 || cap(buf) < HeaderLen+n+padLen(n)+2+ICVLen {
		o.short.Add(1)
		return 0, ErrShort
	}
	seq, err := o.nextSeq()
	if err != nil {
		return 0, err
	}
	total := o.sealWith(buf[:cap(buf)], n, nextHeader, seq, seq)
	o.packets.Add(1)
	o.bytes.Add(uint64(n))
	return total, nil
}

// sealWith seals with an explicit sequence number and IV; Seal passes
// iv == seq. Known-answer tests use it for published vectors whose IV is
// not the sequence number. buf must be large enough.
func (o *Outbound) sealWith(buf []byte, n int, nextHeader byte, seq, iv uint64) int {
	pad := padLen(n)
	ptLen := n + pad + 2
	buf = buf[:HeaderLen+ptLen+ICVLen]
	binary.BigEndian.PutUint32(buf[0:], o.spi)
	binary.BigEndian.PutUint32(buf[4:], uint32(seq))
	binary.BigEndian.PutUint64(buf[8:], iv)
	t := buf[HeaderLen+n:]
	for i := range pad {
		t[i] = byte(i + 1)
	}
	t[pad] = byte(pad)
	t[pad+1] = nextHeader

	s := o.scratch.Get().(*scratch)
	copy(s.nonce[:saltLen], o.salt[:])
	copy(s.nonce[saltLen:], buf[8:HeaderLen])
	aad := buf[:8] // SPI || seq
	if o.esn {
		binary.BigEndian.PutUint32(s.aad[0:], o.spi)
		binary.BigEndian.PutUint64(s.aad[4:], seq)
		aad = s.aad[:12] // SPI || seq high || seq low
	}
	o.aead.Seal(buf[HeaderLen:HeaderLen], s.nonce[:], buf[HeaderLen:HeaderLen+ptLen], aad)
	o.scratch.Put(s)
	return len(buf)
}

// Export returns the SA as plain data (a copy of the key included).
func (o *Outbound) Export() State {
	return State{Cipher: o.cipher, SPI: o.spi, Key: append([]byte(nil), o.keymat...), ESN: o.esn, Seq: o.seq.Load()}
}

// Stats returns the SA's counters.
func (o *Outbound) Stats() Stats {
	return Stats{Packets: o.packets.Load(), Bytes: o.bytes.Load(), Short: o.short.Load()}
}
