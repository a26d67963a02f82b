package lab

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
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
	// Duration is how long to send: default 5 s; negative sends until
	// ctx ends or RunningProbe.Stop.
	Duration time.Duration
	ICMP     bool          // ICMP echo instead of UDP to the echo responder
	Size     int           // payload bytes, >= 16; default 64
	Port     int           // echo responder port; default DefaultEchoPort
	Grace    time.Duration // how long to wait for late replies after the last send; default 300 ms
	// StopOnReply ends the probe at the first reply (a readiness check).
	StopOnReply bool
	// Timeline keeps every packet's send and receive time in
	// ProbeResult.Packets (for plots).
	Timeline bool
}

// LossWindow is a run of consecutive lost packets. Start is the send time
// of the first lost packet and End that of the next packet that came back
// (or, for a window at the very end, one interval after the last lost
// packet), both from the probe's start.
type LossWindow struct {
	FirstSeq   int     `json:"first_seq"`
	LastSeq    int     `json:"last_seq"`
	Lost       int     `json:"lost"`
	StartMS    float64 `json:"start_ms"`
	EndMS      float64 `json:"end_ms"`
	DurationMS float64 `json:"duration_ms"`
}

// PacketTiming is one probe packet: when it was sent and when its reply
// came, in ms from the probe's start; RecvMS is -1 for a lost packet.
type PacketTiming struct {
	Seq    int     `json:"seq"`
	SentMS float64 `json:"sent_ms"`
	RecvMS float64 `json:"recv_ms"`
}

// ProbeResult is what a probe saw. A reply that comes late (after later
// packets' replies, or up to Grace after the last send) counts as
// received; a duplicate reply counts once and in Duplicates.
type ProbeResult struct {
	From       string       `json:"from"`
	To         string       `json:"to"`
	Proto      string       `json:"proto"`
	Start      time.Time    `json:"start"`
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
	// Packets is every packet's timing, with ProbeOptions.Timeline only.
	Packets []PacketTiming `json:"packets,omitempty"`
}

// probeHeader is the start of every probe payload: seq (8) and the probe's
// random token (8), so that concurrent probes never count each other's
// replies.
const probeHeader = 16

// probeSockBuf is the receive buffer of probe and echo sockets (capped by
// net.core.rmem_max unless root, which the lab is).
const probeSockBuf = 8 << 20

func (o *ProbeOptions) defaults() error {
	if o.Interval <= 0 {
		o.Interval = time.Millisecond
	}
	if o.Duration == 0 {
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
	if o.Port < 1 || o.Port > 65535 {
		return fmt.Errorf("probe port %d: want 1..65535", o.Port)
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

// probeConn is one probe socket: send a payload, read reply payloads.
type probeConn interface {
	send(buf []byte) error
	recv(buf []byte) ([]byte, error)
	Close() error
}

// Probe sends numbered packets from a node and reports every loss window.
// When ctx ends it stops sending, waits up to Grace for the replies in
// flight and returns what it saw. The error is about setting up (a wrong
// node, option or socket), never about lost packets.
func (l *Lab) Probe(ctx context.Context, o ProbeOptions) (*ProbeResult, error) {
	p, err := l.StartProbe(ctx, o)
	if err != nil {
		return nil, err
	}
	return p.Wait(), nil
}

// StartProbe starts a probe and returns at once, the first packet on its
// way: break things, then Stop (or Wait) it. Safe to run alongside node
// operations and other probes.
func (l *Lab) StartProbe(ctx context.Context, o ProbeOptions) (*RunningProbe, error) {
	ns, err := l.NS(o.From)
	if err != nil {
		return nil, err
	}
	return StartProbeNS(ctx, ns, o)
}

// ProbeNS is Probe from a named namespace (o.From is only a label).
func ProbeNS(ctx context.Context, ns string, o ProbeOptions) (*ProbeResult, error) {
	p, err := StartProbeNS(ctx, ns, o)
	if err != nil {
		return nil, err
	}
	return p.Wait(), nil
}

// StartProbeNS is StartProbe from a named namespace.
func StartProbeNS(ctx context.Context, ns string, o ProbeOptions) (*RunningProbe, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	var tok [8]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("probe token: %w", err)
	}
	token := binary.BigEndian.Uint64(tok[:])
	var c probeConn
	err := netnsutil.Do(ns, func() error {
		var err error
		c, err = openProbe(o, uint16(token))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("probe from %s: %w", ns, err)
	}
	p := &RunningProbe{
		o: o, c: c, token: token,
		lg:   &probeLog{start: time.Now(), first: make(chan struct{}), reply: make(chan struct{}, 1)},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go p.run(ctx)
	return p, nil
}

// RunningProbe is a probe in progress. Its methods are safe for concurrent
// use.
type RunningProbe struct {
	o     ProbeOptions
	c     probeConn
	token uint64
	lg    *probeLog

	stopOnce sync.Once
	stop     chan struct{} // closed by Stop
	done     chan struct{} // closed when res is set
	res      *ProbeResult
}

// Start is when the probe started: the zero of every offset it reports.
func (p *RunningProbe) Start() time.Time { return p.lg.start }

// Offset returns t on the probe's clock (ms from its start), to put an
// event (a power-off, say) next to its loss windows.
func (p *RunningProbe) Offset(t time.Time) float64 { return ms(t.Sub(p.lg.start)) }

// Stop ends sending, waits up to Grace for the replies in flight and
// returns the result. It may be called more than once, also after the
// probe ended by itself.
func (p *RunningProbe) Stop() *ProbeResult {
	p.stopOnce.Do(func() { close(p.stop) })
	return p.Wait()
}

// Wait waits until the probe ends (its Duration is over, ctx ended or Stop)
// and returns the result.
func (p *RunningProbe) Wait() *ProbeResult {
	<-p.done
	return p.res
}

// Done is closed when the probe has ended and Wait returns at once.
func (p *RunningProbe) Done() <-chan struct{} { return p.done }

// RepliedSince reports whether a packet sent at or after t has had its
// reply yet: traffic flows again after an outage that began before t.
func (p *RunningProbe) RepliedSince(t time.Time) bool {
	lg := p.lg
	from := t.Sub(lg.start)
	lg.mu.Lock()
	defer lg.mu.Unlock()
	for i := len(lg.sentAt) - 1; i >= 0 && lg.sentAt[i] >= from; i-- {
		if lg.recvAt[i] != 0 {
			return true
		}
	}
	return false
}

func openProbe(o ProbeOptions, id uint16) (probeConn, error) {
	if o.ICMP {
		pc, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return nil, err
		}
		if ipc, ok := pc.IPv4PacketConn().PacketConn.(*net.IPConn); ok {
			setRcvBuf(ipc)
		}
		return &icmpProbe{pc: pc, to: &net.IPAddr{IP: o.To.AsSlice()}, id: int(id)}, nil
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
	wb  []byte
}

func (p *icmpProbe) send(b []byte) error {
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: p.id, Seq: p.seq & 0xffff, Data: b}}
	p.seq++
	wb, err := m.Marshal(p.wb[:0])
	if err != nil {
		return err
	}
	p.wb = wb
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
	start time.Time
	first chan struct{} // closed at the first reply
	reply chan struct{} // signalled (never blocking) at every reply

	mu       sync.Mutex // guards the fields below
	sentAt   []time.Duration
	recvAt   []time.Duration // 0 = not received
	received int
	dups     int
	seen     bool
}

func (p *RunningProbe) run(ctx context.Context) {
	defer close(p.done)
	lg, o := p.lg, p.o
	readDone := make(chan struct{})
	go func() { defer close(readDone); readReplies(p.c, lg, p.token, o.Size) }()
	var first <-chan struct{}
	if o.StopOnReply {
		first = lg.first
	}

	buf := make([]byte, o.Size)
	binary.BigEndian.PutUint64(buf[8:], p.token)
	n := -1
	if o.Duration > 0 {
		n = int(o.Duration / o.Interval)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
sending:
	for i := 0; i != n; i++ {
		if d := time.Until(lg.start.Add(time.Duration(i) * o.Interval)); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break sending
			case <-p.stop:
				break sending
			case <-first:
				break sending
			case <-timer.C:
			}
		} else {
			select {
			case <-ctx.Done():
				break sending
			case <-p.stop:
				break sending
			case <-first:
				break sending
			default:
			}
		}
		binary.BigEndian.PutUint64(buf, uint64(i))
		lg.mu.Lock()
		lg.sentAt = append(lg.sentAt, time.Since(lg.start))
		lg.recvAt = append(lg.recvAt, 0)
		lg.mu.Unlock()
		p.c.send(buf) // a send error (no route, say) is a lost packet
	}
	// Wait for the replies in flight: until all came, the first came
	// (StopOnReply) or Grace is over.
	grace := time.NewTimer(o.Grace)
	defer grace.Stop()
waiting:
	for !lg.allIn() {
		select {
		case <-first:
			break waiting
		case <-grace.C:
			break waiting
		case <-lg.reply:
		}
	}
	p.c.Close()
	<-readDone
	p.res = lg.result(o)
}

func readReplies(c probeConn, lg *probeLog, token uint64, size int) {
	buf := make([]byte, size+64)
	for {
		b, err := c.recv(buf)
		if err != nil {
			return
		}
		lg.record(b, token, time.Since(lg.start))
	}
}

// record counts one reply payload that came at offset now.
func (lg *probeLog) record(b []byte, token uint64, now time.Duration) {
	if len(b) < probeHeader || binary.BigEndian.Uint64(b[8:]) != token {
		return
	}
	seq := binary.BigEndian.Uint64(b)
	lg.mu.Lock()
	defer lg.mu.Unlock()
	switch {
	case seq >= uint64(len(lg.recvAt)):
		return
	case lg.recvAt[seq] != 0:
		lg.dups++
		return
	}
	lg.recvAt[seq] = max(now, 1)
	lg.received++
	if !lg.seen {
		lg.seen = true
		close(lg.first)
	}
	select {
	case lg.reply <- struct{}{}:
	default:
	}
}

// allIn reports whether every packet sent so far has its reply.
func (lg *probeLog) allIn() bool {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return lg.received == len(lg.sentAt)
}

func (lg *probeLog) result(o ProbeOptions) *ProbeResult {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	r := &ProbeResult{
		From: o.From, To: o.To.String(), Proto: "udp", Start: lg.start, IntervalMS: ms(o.Interval),
		Sent: len(lg.sentAt), Duplicates: lg.dups, Windows: []LossWindow{},
	}
	if o.ICMP {
		r.Proto = "icmp"
	}
	if o.Timeline {
		r.Packets = make([]PacketTiming, len(lg.sentAt))
	}
	var rttSum, wStart time.Duration
	var w *LossWindow
	for i, sent := range lg.sentAt {
		got := lg.recvAt[i]
		if o.Timeline {
			r.Packets[i] = PacketTiming{Seq: i, SentMS: ms(sent), RecvMS: -1}
			if got != 0 {
				r.Packets[i].RecvMS = ms(got)
			}
		}
		if got == 0 {
			if w == nil {
				w, wStart = &LossWindow{FirstSeq: i, StartMS: ms(sent)}, sent
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
			r.closeWindow(w, wStart, sent)
			w = nil
		}
	}
	if w != nil {
		r.closeWindow(w, wStart, lg.sentAt[w.LastSeq]+o.Interval)
	}
	if r.Received > 0 {
		r.RTTAvgMS = ms(rttSum / time.Duration(r.Received))
	}
	r.Lost = r.Sent - r.Received
	return r
}

func (r *ProbeResult) closeWindow(w *LossWindow, start, end time.Duration) {
	w.EndMS = ms(end)
	w.DurationMS = ms(end - start)
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

// setRcvBuf gives a socket a deep receive buffer; SO_RCVBUFFORCE (root)
// passes net.core.rmem_max.
func setRcvBuf(uc interface {
	syscall.Conn
	SetReadBuffer(int) error
}) {
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
