package tunnel

import (
	"fmt"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/gre"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/udp"
)

// bufSize is the size of every packet buffer: room for a 64 KiB
// super-packet (TUN offloads, UDP GSO runs) plus ESP and GRE framing.
const bufSize = esp.HeaderLen + gre.MaxHeaderLen + tun.MaxPacket + esp.MaxTrailer

// maxReadErrors is how many TUN or socket read errors in a row end a loop.
const maxReadErrors = 1000

// sender is the state of a tunnel's send loop, allocated once.
type sender struct {
	t     *Tunnel
	off   int // where the inner packet starts in a buffer
	bufs  [][]byte
	sizes []int
	plen  []int  // ESP payload length, then sealed length; <= 0 = dropped
	nh    []byte // next header
	why   []outReason
	msgs  []udp.Message
	out   *outSA // the SA of the batch being sealed
	seal  func(lo, hi int)
	wg    sync.WaitGroup
	bo    batchOut
	icmp  icmpLimiter
	ibuf  []byte   // ICMP error being written
	iwrap [][]byte // ibuf as a batch of one
}

func newSender(t *Tunnel) *sender {
	n := max(t.dev.BatchSize(), 1)
	s := &sender{
		t:     t,
		off:   esp.HeaderLen + t.greLen,
		bufs:  make([][]byte, n),
		sizes: make([]int, n),
		plen:  make([]int, n),
		nh:    make([]byte, n),
		why:   make([]outReason, n),
		msgs:  make([]udp.Message, 0, n),
		ibuf:  make([]byte, tun.Headroom+icmpMaxLen),
		iwrap: make([][]byte, 1),
	}
	for i := range s.bufs {
		s.bufs[i] = make([]byte, bufSize)
	}
	s.seal = s.sealRange
	return s
}

// sendLoop moves packets from the TUN to the peer until the TUN is closed.
func (t *Tunnel) sendLoop() error {
	s := newSender(t)
	errs := 0
	for {
		n, err := t.dev.Read(s.bufs, s.sizes, s.off)
		if err != nil {
			if isClosed(err) {
				return nil
			}
			t.c.out[outTUNRead].Add(1)
			if errs++; errs > maxReadErrors {
				return fmt.Errorf("reading from %s: %w", t.name, err)
			}
			time.Sleep(time.Millisecond)
		}
		if n == 0 {
			continue
		}
		errs = 0
		s.batch(n)
	}
}

// batch frames, seals and sends the n packets read.
func (s *sender) batch(n int) {
	t := s.t
	s.out = t.out.Load()
	if s.out == nil {
		s.bo.drops[outNoSA] += uint64(n)
		s.bo.flush(&t.c)
		return
	}
	for i := range n {
		s.plen[i] = s.frame(i)
	}
	t.m.pool.run(n, s.seal, &s.wg)
	s.msgs = s.msgs[:0]
	for i := 0; i < n; i++ {
		if s.plen[i] <= 0 {
			if s.plen[i] < 0 {
				s.bo.drops[s.why[i]]++
			}
			continue
		}
		// A run of equal-sized packets (the last may be shorter) goes out
		// as one UDP GSO message: copied behind the first packet.
		head := s.bufs[i]
		l := s.plen[i]
		total, segs := l, 1
		s.bo.packets++
		s.bo.bytes += uint64(s.sizes[i])
		j := i + 1
		for ; j < n && segs < udp.MaxSegments; j++ {
			pl := s.plen[j]
			if pl <= 0 {
				if pl < 0 {
					s.bo.drops[s.why[j]]++
				}
				continue
			}
			if pl > l || total+pl > udp.MaxGSOSize {
				break
			}
			copy(head[total:], s.bufs[j][:pl])
			total += pl
			segs++
			s.bo.packets++
			s.bo.bytes += uint64(s.sizes[j])
			if pl < l {
				j++
				break
			}
		}
		m := udp.Message{Buf: head[:total], Addr: s.out.remote}
		if segs > 1 {
			m.Segment = l
		}
		s.msgs = append(s.msgs, m)
		i = j - 1
	}
	if len(s.msgs) > 0 {
		if _, err := s.out.sock.conn.WriteBatch(s.msgs); err != nil {
			for _, m := range s.msgs {
				if m.Failed {
					segs := uint64(1)
					if m.Segment > 0 {
						segs = uint64((len(m.Buf) + m.Segment - 1) / m.Segment)
					}
					s.bo.drops[outUDPWrite] += segs
					s.bo.packets -= segs
				}
			}
		}
		t.txSeen.Store(true)
	}
	s.bo.flush(&t.c)
}

// frame checks packet i and writes its GRE header. It returns the ESP
// payload length, 0 for a packet answered with an ICMP error, or -1 with
// s.why[i] set.
func (s *sender) frame(i int) int {
	t := s.t
	p := s.bufs[i][s.off : s.off+s.sizes[i]]
	var proto uint16
	var nh byte
	switch {
	case len(p) >= 20 && p[0]>>4 == 4:
		proto, nh = gre.ProtoIPv4, esp.NextHeaderIPv4
	case len(p) >= 40 && p[0]>>4 == 6:
		proto, nh = gre.ProtoIPv6, esp.NextHeaderIPv6
	default:
		s.why[i] = outInner
		return -1
	}
	if len(p) > t.mtu && (nh == esp.NextHeaderIPv6 || p[6]&0x40 != 0) {
		s.tooBig(p)
		s.why[i] = outTooBig
		return -1
	}
	if t.gre {
		gre.Put(s.bufs[i][esp.HeaderLen:], proto, t.key, t.hasKey)
		nh = esp.NextHeaderGRE
	}
	s.nh[i] = nh
	return t.greLen + len(p)
}

// sealRange seals packets [lo, hi) with the batch's SA.
func (s *sender) sealRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		if s.plen[i] <= 0 {
			continue
		}
		l, err := s.out.out.Seal(s.bufs[i], s.plen[i], s.nh[i])
		switch {
		case err == nil:
			s.plen[i] = l
		case err == esp.ErrSeqExhausted:
			s.why[i], s.plen[i] = outSeqExhausted, -1
		default:
			s.why[i], s.plen[i] = outSeal, -1
		}
	}
}

// tooBig writes an ICMP "fragmentation needed" or "packet too big" for the
// inner packet p back into the TUN, within the rate limit.
func (s *sender) tooBig(p []byte) {
	t := s.t
	if !s.icmp.allow(t.m.now()) {
		t.c.icmpLimited.Add(1)
		return
	}
	n := buildTooBig(s.ibuf[tun.Headroom:], p, t.mtu, t.cfg.Address.Addr())
	if n == 0 {
		return
	}
	s.iwrap[0] = s.ibuf[:tun.Headroom+n]
	t.tunMu.Lock()
	_, err := t.dev.Write(s.iwrap, tun.Headroom)
	t.tunMu.Unlock()
	if err == nil {
		t.c.icmpSent.Add(1)
	}
}
