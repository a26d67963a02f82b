package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/netnsutil"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// ProbeOptions configure a probe.
type ProbeOptions struct {
	From     string        // node that sends
	To       netip.Addr    // address it sends to
	Interval time.Duration // between packets; default 1 ms
	Duration time.Duration // how long to send; default 5 s
	ICMP     bool          // ICMP echo instead of UDP to the echo responder
	Size     int           // payload bytes, >= 16; default 64
	Port     int           // echo responder port; default DefaultEchoPort
	Grace    time.Duration // wait for late replies; default 300 ms
	// StopOnReply ends the probe at the first reply (a readiness check).
	StopOnReply bool
}

// LossWindow is a run of consecutive lost packets. Start is the send time
// of the first lost packet and End that of the next packet that came back,
// both from the probe's start.
type LossWindow struct {
	FirstSeq   int     `json:"first_seq"`
	LastSeq    int     `json:"last_seq"`
	Lost       int     `json:"lost"`
	StartMS    float64 `json:"start_ms"`
	EndMS      float64 `json:"end_ms"`
	DurationMS float64 `json:"duration_ms"`
}

// ProbeResult is what a probe saw.
type ProbeResult struct {
	From       string       `json:"from"`
	To         string       `json:"to"`
	Proto      string       `json:"proto"`
	IntervalMS float64      `json:"interval_ms"`
	Sent       int          `json:"sent"`
	Received   int          `json:"received"`
	Lost       int          `json:"lost"`
	Duplicates int          `json:"duplicates"`
	RTTMinMS   float64      `json:"rtt_min_ms"`
	RTTAvgMS   float64      `json:"rtt_avg_ms"`
	RTTMaxMS   float64      `json:"rtt_max_ms"`
	Windows    []LossWindow `json:"loss_windows"`
	// OutageMS is the longest loss window, 0 when nothing was lost.
	OutageMS float64 `json:"outage_ms"`
}

const probeHeader = 16 // seq (8) + magic (8)

// probeSockBuf is the receive buffer of probe and echo sockets (capped by
// net.core.rmem_max unless root, which the lab is).
const probeSockBuf = 8 << 20

const probeMagic = 0x68617670_6e707262 // "havpnprb"

func (o *ProbeOptions) defaults() error {
	if o.Interval <= 0 {
		o.Interval = time.Millisecond
	}
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Size < probeHeader || o.Size > 65000 {
		return fmt.Errorf("probe size %d: want %d..65000", o.Size, probeHeader)
	}
	if o.Port == 0 {
		o.Port = DefaultEchoPort
	}
	if o.Grace <= 0 {
		o.Grace = 300 * time.Millisecond
	}
	if !o.To.IsValid() {
		return errors.New("probe: no destination address")
	}
	if o.ICMP && !o.To.Is4() {
		return errors.New("probe: --icmp supports IPv4 destinations only")
	}
	return nil
}

// probeConn is one probe socket: send packet seq, read replies.
type probeConn interface {
	send(buf []byte) error
	recv(buf []byte) ([]byte, error)
	Close() error
}

// Probe sends numbered packets from a node and reports every loss window.
// It returns early, with what it saw, when ctx ends.
func (l *Lab) Probe(ctx context.Context, o ProbeOptions) (*ProbeResult, error) {
	ns, err := l.NS(o.From)
	if err != nil {
		return nil, err
	}
	return ProbeNS(ctx, ns, o)
}

// ProbeNS is Probe from a named namespace.
func ProbeNS(ctx context.Context, ns string, o ProbeOptions) (*ProbeResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	var c probeConn
	err := netnsutil.Do(ns, func() error {
		var err error
		c, err = openProbe(o)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("probe from %s: %w", ns, err)
	}
	defer c.Close()
	return runProbe(ctx, c, o), nil
}

func openProbe(o ProbeOptions) (probeConn, error) {
	if o.ICMP {
		pc, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return nil, err
		}
		return &icmpProbe{pc: pc, to: &net.IPAddr{IP: o.To.AsSlice()}, id: os.Getpid() & 0xffff}, nil
	}
	uc, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	setRcvBuf(uc)
	return &udpProbe{uc: uc, to: net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.To, uint16(o.Port)))}, nil
}

type udpProbe struct {
	uc *net.UDPConn
	to *net.UDPAddr
}

func (p *udpProbe) send(b []byte) error { _, err := p.uc.WriteToUDP(b, p.to); return err }
func (p *udpProbe) recv(b []byte) ([]byte, error) {
	n, _, err := p.uc.ReadFromUDP(b)
	return b[:n], err
}
func (p *udpProbe) Close() error { return p.uc.Close() }

type icmpProbe struct {
	pc  *icmp.PacketConn
	to  *net.IPAddr
	id  int
	seq int
}

func (p *icmpProbe) send(b []byte) error {
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: p.seq & 0xffff, Data: b}}
	p.seq++
	wb, err := m.Marshal(nil)
	if err != nil {
		return err
	}
	_, err = p.pc.WriteTo(wb, p.to)
	return err
}

func (p *icmpProbe) recv(b []byte) ([]byte, error) {
	for {
		n, _, err := p.pc.ReadFrom(b)
		if err != nil {
			return nil, err
		}
		m, err := icmp.ParseMessage(1, b[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.ID == p.id {
			return e.Data, nil
		}
	}
}

func (p *icmpProbe) Close() error { return p.pc.Close() }

// probeLog is the probe's record, shared by the sender and the reader.
type probeLog struct {
	mu     sync.Mutex
	start  time.Time
	sentAt []time.Duration
	recvAt []time.Duration // 0 = not received
	dups   int
	first  chan struct{} // closed at the first reply
	seen   bool
}

func runProbe(ctx context.Context, c probeConn, o ProbeOptions) *ProbeResult {
	lg := &probeLog{start: time.Now(), first: make(chan struct{})}
	readDone := make(chan struct{})
	go func() { defer close(readDone); readReplies(c, lg, o.Size) }()
	var first <-chan struct{}
	if o.StopOnReply {
		first = lg.first
	}

	buf := make([]byte, o.Size)
	binary.BigEndian.PutUint64(buf[8:], probeMagic)
	n := int(o.Duration / o.Interval)
sending:
	for i := 0; i < n; i++ {
		at := time.Duration(i) * o.Interval
		if d := time.Until(lg.start.Add(at)); d > 0 {
			select {
			case <-ctx.Done():
				break sending
			case <-first:
				break sending
			case <-time.After(d):
			}
		} else if ctx.Err() != nil {
			break
		}
		binary.BigEndian.PutUint64(buf, uint64(i))
		lg.mu.Lock()
		lg.sentAt = append(lg.sentAt, time.Since(lg.start))
		lg.recvAt = append(lg.recvAt, 0)
		lg.mu.Unlock()
		c.send(buf) // a send error (no route, say) is a lost packet
	}
	select {
	case <-ctx.Done():
	case <-first:
	case <-time.After(o.Grace):
	}
	c.Close()
	<-readDone
	return lg.result(o)
}

func readReplies(c probeConn, lg *probeLog, size int) {
	buf := make([]byte, size+64)
	for {
		b, err := c.recv(buf)
		if err != nil {
			return
		}
		now := time.Since(lg.start)
		if len(b) < probeHeader || binary.BigEndian.Uint64(b[8:]) != probeMagic {
			continue
		}
		seq := binary.BigEndian.Uint64(b)
		lg.mu.Lock()
		switch {
		case seq >= uint64(len(lg.recvAt)):
		case lg.recvAt[seq] != 0:
			lg.dups++
		default:
			lg.recvAt[seq] = max(now, 1)
			if !lg.seen {
				lg.seen = true
				close(lg.first)
			}
		}
		lg.mu.Unlock()
	}
}

func (lg *probeLog) result(o ProbeOptions) *ProbeResult {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	r := &ProbeResult{
		From: o.From, To: o.To.String(), Proto: "udp", IntervalMS: ms(o.Interval),
		Sent: len(lg.sentAt), Duplicates: lg.dups, Windows: []LossWindow{},
	}
	if o.ICMP {
		r.Proto = "icmp"
	}
	var rttSum time.Duration
	var w *LossWindow
	for i, sent := range lg.sentAt {
		got := lg.recvAt[i]
		if got == 0 {
			if w == nil {
				w = &LossWindow{FirstSeq: i, StartMS: ms(sent)}
			}
			w.LastSeq, w.Lost = i, w.Lost+1
			continue
		}
		rtt := got - sent
		if r.Received == 0 || ms(rtt) < r.RTTMinMS {
			r.RTTMinMS = ms(rtt)
		}
		r.RTTMaxMS = max(r.RTTMaxMS, ms(rtt))
		rttSum += rtt
		r.Received++
		if w != nil {
			r.closeWindow(w, ms(sent))
			w = nil
		}
	}
	if w != nil {
		r.closeWindow(w, ms(lg.sentAt[w.LastSeq]+o.Interval))
	}
	if r.Received > 0 {
		r.RTTAvgMS = ms(rttSum / time.Duration(r.Received))
	}
	r.Lost = r.Sent - r.Received
	return r
}

func (r *ProbeResult) closeWindow(w *LossWindow, endMS float64) {
	w.EndMS = endMS
	w.DurationMS = endMS - w.StartMS
	r.Windows = append(r.Windows, *w)
	r.OutageMS = max(r.OutageMS, w.DurationMS)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Echo answers every UDP datagram on port with the same bytes until ctx
// ends: the probe's responder, run in every lab node.
func Echo(ctx context.Context, port int) error {
	uc, err := net.ListenUDP("udp", &net.UDPAddr{Port: port})
	if err != nil {
		return fmt.Errorf("echo responder: %w", err)
	}
	// A deep buffer rides out scheduling stalls of the responder (a loaded
	// machine) without dropping, so losses are the network's.
	setRcvBuf(uc)
	go func() { <-ctx.Done(); uc.Close() }()
	buf := make([]byte, 65536)
	for {
		n, from, err := uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("echo responder: %w", err)
		}
		uc.WriteToUDPAddrPort(buf[:n], from)
	}
}

// setRcvBuf gives a UDP socket a deep receive buffer; SO_RCVBUFFORCE (root)
// passes net.core.rmem_max.
func setRcvBuf(uc *net.UDPConn) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, probeSockBuf) != nil {
			uc.SetReadBuffer(probeSockBuf)
		}
	})
}
