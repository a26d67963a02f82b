package tunnel

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/gre"
	"github.com/havpn/havpn/internal/tunnel/tun"
	"github.com/havpn/havpn/internal/tunnel/udp"
)

// rxPkt is one received ESP packet on its way through a batch.
type rxPkt struct {
	b       []byte // the ESP packet, decrypted in place
	sa      *inSA
	payload []byte
	nh      byte
	err     error
}

// receiver is the state of a socket's receive loop, allocated once.
type receiver struct {
	m    *Manager
	s    *socket
	msgs []udp.Message
	pk   []rxPkt
	np   int
	open func(lo, hi int)
	wg   sync.WaitGroup
	// TUN write batch of the tunnel cur.
	cur   *Tunnel
	wbufs [][]byte
	wout  [][]byte
	bi    batchIn
}

func newReceiver(m *Manager, s *socket) *receiver {
	r := &receiver{
		m:     m,
		s:     s,
		msgs:  make([]udp.Message, m.batch),
		pk:    make([]rxPkt, m.batch),
		wbufs: make([][]byte, m.batch),
		wout:  make([][]byte, 0, m.batch),
	}
	for i := range r.msgs {
		r.msgs[i].Buf = make([]byte, bufSize)
		r.wbufs[i] = make([]byte, tun.Headroom+tun.MaxPacket)
	}
	r.open = r.openRange
	return r
}

// receiveLoop moves packets from a socket to the tunnels' TUNs until the
// socket is closed.
func (m *Manager) receiveLoop(s *socket) error {
	r := newReceiver(m, s)
	errs := 0
	for {
		n, err := s.conn.ReadBatch(r.msgs)
		if err != nil {
			if isClosed(err) {
				return nil
			}
			s.c.readErrors.Add(1)
			if errs++; errs > maxReadErrors {
				return fmt.Errorf("reading from socket %s: %w", s.local, err)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		errs = 0
		r.batch(n)
	}
}

// batch handles n received messages.
func (r *receiver) batch(n int) {
	tbl := *r.m.inbound.Load()
	for i := range n {
		msg := &r.msgs[i]
		if msg.N <= 0 {
			r.s.c.truncated.Add(1)
			continue
		}
		seg := msg.Segment
		if seg <= 0 {
			seg = msg.N
		}
		for off := 0; off < msg.N; off += seg {
			r.datagram(tbl, msg.Buf[off:min(off+seg, msg.N)], msg.Addr)
		}
	}
	r.process()
}

// datagram sorts one UDP payload (RFC 3948 §2) and queues ESP packets.
func (r *receiver) datagram(tbl map[uint32]*inSA, d []byte, from netip.AddrPort) {
	switch esp.ClassifyUDP(d) {
	case esp.KindESP:
		r.s.c.esp.Add(1)
		spi, _ := esp.SPIOf(d)
		sa := tbl[spi]
		if sa == nil {
			if t := r.m.byRemote[from.Addr()]; t != nil {
				t.c.in[inNoSA].Add(1)
			} else {
				r.s.c.noSA.Add(1)
			}
			return
		}
		r.pk[r.np] = rxPkt{b: d, sa: sa}
		r.np++
		if r.np == len(r.pk) {
			r.process()
		}
	case esp.KindIKE:
		if h := r.m.ike.Load(); h != nil {
			r.s.c.ike.Add(1)
			(*h)(d, from, r.s.local)
		} else {
			r.s.c.ikeDropped.Add(1)
		}
	case esp.KindKeepalive:
		r.s.c.natKeepalive.Add(1)
	default:
		r.s.c.invalid.Add(1)
	}
}

func (r *receiver) openRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		p := &r.pk[i]
		p.payload, p.nh, p.err = p.sa.in.Open(p.b)
	}
}

// process opens the queued ESP packets and writes their inner packets to
// the TUNs, in order.
func (r *receiver) process() {
	np := r.np
	if np == 0 {
		return
	}
	r.np = 0
	r.m.pool.run(np, r.open, &r.wg)
	for i := range np {
		p := &r.pk[i]
		t := p.sa.t
		if t != r.cur {
			r.flush()
			r.cur = t
		}
		if p.err != nil {
			r.bi.drops[espReason(p.err)]++
			continue
		}
		t.rxSeen.Store(true)
		inner, ok := r.inner(t, p)
		if !ok {
			continue
		}
		w := len(r.wout)
		buf := r.wbufs[w]
		copy(buf[tun.Headroom:], inner)
		r.wout = append(r.wout, buf[:tun.Headroom+len(inner)])
		r.bi.packets++
		r.bi.bytes += uint64(len(inner))
		if len(r.wout) == len(r.wbufs) {
			r.flush()
		}
	}
	r.flush()
	r.cur = nil
}

func espReason(err error) inReason {
	switch err {
	case esp.ErrReplay:
		return inReplay
	case esp.ErrAuth:
		return inAuth
	case esp.ErrPadding:
		return inPadding
	default:
		return inShort
	}
}

// inner returns the inner packet of an opened ESP packet, or false after
// counting why it is dropped (keepalives included).
func (r *receiver) inner(t *Tunnel, p *rxPkt) ([]byte, bool) {
	var pkt []byte
	var version byte
	switch p.nh {
	case esp.NextHeaderNoNext:
		r.bi.ka++
		return nil, false
	case esp.NextHeaderGRE:
		if !t.gre {
			r.bi.drops[inNextHeader]++
			return nil, false
		}
		h, err := gre.Parse(p.payload)
		if err != nil {
			r.bi.drops[inGRE]++
			return nil, false
		}
		if h.HasKey != t.hasKey || h.Key != t.key && t.hasKey {
			r.bi.drops[inGREKey]++
			return nil, false
		}
		switch h.Proto {
		case gre.ProtoIPv4:
			version = 4
		case gre.ProtoIPv6:
			version = 6
		default:
			r.bi.drops[inGREProto]++
			return nil, false
		}
		pkt = p.payload[h.Len:]
	case esp.NextHeaderIPv4, esp.NextHeaderIPv6:
		if t.gre {
			r.bi.drops[inNextHeader]++
			return nil, false
		}
		version = 4
		if p.nh == esp.NextHeaderIPv6 {
			version = 6
		}
		pkt = p.payload
	default:
		r.bi.drops[inNextHeader]++
		return nil, false
	}
	pkt, ok := checkIP(pkt, version)
	if !ok {
		r.bi.drops[inInner]++
		return nil, false
	}
	return pkt, true
}

// checkIP checks that pkt is an IP packet of the version and returns it
// cut to the length its header gives.
func checkIP(pkt []byte, version byte) ([]byte, bool) {
	switch version {
	case 4:
		if len(pkt) < 20 || pkt[0]>>4 != 4 {
			return nil, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		tl := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < 20 || tl < ihl || tl > len(pkt) {
			return nil, false
		}
		return pkt[:tl], true
	case 6:
		if len(pkt) < 40 || pkt[0]>>4 != 6 {
			return nil, false
		}
		tl := 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
		if tl > len(pkt) {
			return nil, false
		}
		return pkt[:tl], true
	}
	return nil, false
}

// flush writes the queued inner packets of r.cur to its TUN and adds the
// batch's counts to the tunnel.
func (r *receiver) flush() {
	t := r.cur
	if t == nil {
		return
	}
	if len(r.wout) > 0 {
		t.tunMu.Lock()
		_, err := t.dev.Write(r.wout, tun.Headroom)
		t.tunMu.Unlock()
		if err != nil {
			failed := uint64(1)
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				failed = uint64(len(j.Unwrap()))
			}
			r.bi.drops[inTUNWrite] += failed
			r.bi.packets -= min(failed, r.bi.packets)
		}
		r.wout = r.wout[:0]
	}
	r.bi.flush(&t.c)
}
