package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// DefaultStreamPort is the TCP port a stream listens on (distinct from
// the echo responder's DefaultEchoPort).
const DefaultStreamPort = 7778

// chunkHeader is the start of every stream chunk: its sequence number (8)
// and its send time in ns from the stream's start (8); the rest of the
// chunk is the low byte of the sequence number, repeated.
const chunkHeader = 16

// StreamOptions configure a TCP stream between two lab nodes.
type StreamOptions struct {
	From string     // node that dials and sends
	To   string     // node that listens and receives
	Addr netip.Addr // address dialed; default To's first interface's address
	Port int        // default DefaultStreamPort
	// Interval is the time between two chunks; default 1 ms.
	Interval time.Duration
	// ChunkSize is the bytes of one chunk, >= 16; default 64.
	ChunkSize int
	// Drain is how long Stop waits for the bytes in flight to arrive;
	// default 10 s (a TCP retransmission after a long outage can take
	// seconds).
	Drain time.Duration
	// Connect bounds setting the connection up; default 3 s.
	Connect time.Duration
}

func (o *StreamOptions) defaults() error {
	if o.Port == 0 {
		o.Port = DefaultStreamPort
	}
	if o.Interval <= 0 {
		o.Interval = time.Millisecond
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = 64
	}
	if o.Drain <= 0 {
		o.Drain = 10 * time.Second
	}
	if o.Connect <= 0 {
		o.Connect = 3 * time.Second
	}
	switch {
	case o.Port < 1 || o.Port > 65535:
		return fmt.Errorf("stream port %d: want 1..65535", o.Port)
	case o.ChunkSize < chunkHeader || o.ChunkSize > 65536:
		return fmt.Errorf("stream chunk size %d: want %d..65536", o.ChunkSize, chunkHeader)
	}
	return nil
}

// StreamResult is what a stream saw. Offsets are ms from the stream's
// start.
type StreamResult struct {
	From  string    `json:"from"`
	To    string    `json:"to"`
	Addr  string    `json:"addr"`
	Start time.Time `json:"start"`
	// Survived: no reset and no other error on either end, every chunk in
	// order and intact, and every byte the sender wrote up to Stop
	// received within Drain, so data flowed again after whatever happened
	// before Stop.
	Survived bool `json:"survived"`
	// Why says why it did not survive; empty when it did.
	Why            string  `json:"why,omitempty"`
	ChunksSent     int     `json:"chunks_sent"`
	ChunksReceived int     `json:"chunks_received"`
	BytesSent      int64   `json:"bytes_sent"`
	BytesReceived  int64   `json:"bytes_received"`
	DurationMS     float64 `json:"duration_ms"`
	// LongestStallMS is the longest time the receiver got nothing while
	// data was due, from StallStartMS; MaxDelayMS the longest a chunk took
	// from its write to its read.
	LongestStallMS float64 `json:"longest_stall_ms"`
	StallStartMS   float64 `json:"stall_start_ms"`
	MaxDelayMS     float64 `json:"max_delay_ms"`
}

// StartStream opens a TCP connection from o.From to a listener in o.To,
// both made inside the nodes' namespaces by this process, and starts
// writing a small timestamped chunk every o.Interval; the receiver checks
// that the chunks come in order and intact. It returns once the connection
// is up: break things, then Stop it. ctx ending stops the stream as Stop
// does. Safe to run alongside probes and node operations; two streams to
// one node need distinct ports.
func (l *Lab) StartStream(ctx context.Context, o StreamOptions) (*RunningStream, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if !o.Addr.IsValid() {
		spec, ok := Spec(o.To)
		if !ok || len(spec.Ports) == 0 {
			return nil, fmt.Errorf("stream to %q: no node with an address (nodes: %v)", o.To, NodeNames())
		}
		o.Addr = spec.Ports[0].Addr.Addr()
	}
	var ln *net.TCPListener
	err := l.Do(o.To, func() error {
		var err error
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{Port: o.Port})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("stream listener in %s: %w", o.To, err)
	}
	dial := func(to netip.AddrPort) (net.Conn, error) {
		var c net.Conn
		err := l.Do(o.From, func() error {
			var err error
			c, err = net.DialTimeout("tcp", to.String(), o.Connect)
			return err
		})
		return c, err
	}
	return startStream(ctx, ln, dial, o)
}

// startStream sets up a stream over any listener and dialer (a test uses
// loopback without namespaces); it owns ln.
func startStream(ctx context.Context, ln *net.TCPListener, dial func(netip.AddrPort) (net.Conn, error), o StreamOptions) (*RunningStream, error) {
	defer ln.Close()
	to := netip.AddrPortFrom(o.Addr, uint16(o.Port))
	out, err := dial(to)
	if err != nil {
		return nil, fmt.Errorf("stream from %s: dialing %s: %w", o.From, to, err)
	}
	ln.SetDeadline(time.Now().Add(o.Connect))
	in, err := ln.AcceptTCP()
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("stream to %s: accepting on %s: %w", o.To, ln.Addr(), err)
	}
	s := &RunningStream{
		o: o, out: out.(*net.TCPConn), in: in, start: time.Now(),
		stop: make(chan struct{}), sent: make(chan struct{}), recvd: make(chan struct{}),
	}
	s.rx = streamRecv{chunk: o.ChunkSize}
	s.unhook = context.AfterFunc(ctx, s.signalStop)
	go s.send()
	go s.receive()
	return s, nil
}

// RunningStream is a stream in progress. Its methods are safe for
// concurrent use.
type RunningStream struct {
	o      StreamOptions
	out    *net.TCPConn // sender's end
	in     *net.TCPConn // receiver's end
	start  time.Time
	unhook func() bool

	stopOnce sync.Once
	stop     chan struct{} // closed when sending should end
	stopAt   time.Time     // set before stop is closed
	sent     chan struct{} // closed when the sender is done; tx is then final
	recvd    chan struct{} // closed when the receiver is done; rx is then final
	tx       streamSend
	rx       streamRecv

	resOnce sync.Once
	res     *StreamResult
}

// Start is when the stream started: the zero of its offsets.
func (s *RunningStream) Start() time.Time { return s.start }

// Offset returns t on the stream's clock (ms from its start).
func (s *RunningStream) Offset(t time.Time) float64 { return ms(t.Sub(s.start)) }

// signalStop ends sending: a write blocked on a full buffer returns at
// once, the sender closes its side, and the receiver has o.Drain to read
// everything up to that close.
func (s *RunningStream) signalStop() {
	s.stopOnce.Do(func() {
		now := time.Now()
		s.stopAt = now
		// stop first: the sender takes a write that fails from now on
		// for the end of sending, not for an error.
		close(s.stop)
		s.out.SetWriteDeadline(now)
		s.in.SetReadDeadline(now.Add(s.o.Drain))
	})
}

// Stop ends sending, waits up to Drain for the bytes in flight and
// returns the result. It may be called more than once.
func (s *RunningStream) Stop() *StreamResult {
	s.signalStop()
	s.unhook()
	<-s.sent
	if s.tx.err != nil {
		// A broken sender sends no close: do not wait Drain for it.
		s.in.SetReadDeadline(time.Now())
	}
	<-s.recvd
	s.resOnce.Do(func() {
		s.out.Close()
		s.in.Close()
		s.res = s.result()
	})
	return s.res
}

// Abort resets the receiving end (SO_LINGER 0, then close), as a peer
// that lost the connection's state (a rebooted host) would answer: a
// fault to inject. The sender then sees the reset and the stream does not
// survive.
func (s *RunningStream) Abort() {
	s.in.SetLinger(0)
	s.in.Close()
}

// streamSend is the sender's record, owned by the sender goroutine until
// sent is closed.
type streamSend struct {
	chunks int
	bytes  int64
	err    error
}

func (s *RunningStream) send() {
	defer close(s.sent)
	buf := make([]byte, s.o.ChunkSize)
	tick := time.NewTicker(s.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			s.tx.err = s.closeWrite()
			return
		case <-tick.C:
		}
		fillChunk(buf, uint64(s.tx.chunks), time.Since(s.start))
		n, err := s.out.Write(buf)
		s.tx.bytes += int64(n)
		if err != nil {
			select {
			case <-s.stop: // the deadline Stop set
				s.tx.err = s.closeWrite()
			default:
				s.tx.err = fmt.Errorf("writing: %w", err)
			}
			return
		}
		s.tx.chunks++
	}
}

func (s *RunningStream) closeWrite() error {
	if err := s.out.CloseWrite(); err != nil {
		return fmt.Errorf("closing the sending side: %w", err)
	}
	return nil
}

// fillChunk writes chunk seq, sent at offset at, into buf.
func fillChunk(buf []byte, seq uint64, at time.Duration) {
	binary.BigEndian.PutUint64(buf, seq)
	binary.BigEndian.PutUint64(buf[8:], uint64(at))
	for i := chunkHeader; i < len(buf); i++ {
		buf[i] = byte(seq)
	}
}

func (s *RunningStream) receive() {
	defer close(s.recvd)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.in.Read(buf)
		if n > 0 {
			s.rx.consume(buf[:n], time.Since(s.start))
		}
		if err != nil {
			s.rx.end(err, time.Since(s.start))
			return
		}
	}
}

// streamRecv checks the received bytes, owned by the receiver goroutine
// until recvd is closed.
type streamRecv struct {
	chunk   int
	pending []byte // start of a chunk not complete yet
	chunks  int
	bytes   int64
	bad     error // first out-of-order or damaged chunk
	eof     bool  // the sender's close arrived: everything it wrote is in
	err     error // a read error other than EOF

	lastAt     time.Duration // time of the last read with data
	stall      time.Duration
	stallStart time.Duration
	maxDelay   time.Duration
}

// consume takes bytes read at offset now.
func (r *streamRecv) consume(b []byte, now time.Duration) {
	r.bytes += int64(len(b))
	r.gap(now)
	r.pending = append(r.pending, b...)
	i := 0
	for ; len(r.pending)-i >= r.chunk; i += r.chunk {
		r.check(r.pending[i:i+r.chunk], now)
	}
	r.pending = r.pending[:copy(r.pending, r.pending[i:])]
}

// gap records the time since the last read as a stall candidate.
func (r *streamRecv) gap(now time.Duration) {
	if d := now - r.lastAt; d > r.stall {
		r.stall, r.stallStart = d, r.lastAt
	}
	r.lastAt = now
}

func (r *streamRecv) check(c []byte, now time.Duration) {
	seq := binary.BigEndian.Uint64(c)
	at := time.Duration(binary.BigEndian.Uint64(c[8:]))
	if r.bad == nil && seq != uint64(r.chunks) {
		r.bad = fmt.Errorf("chunk %d arrived where %d was due", seq, r.chunks)
	}
	for _, x := range c[chunkHeader:] {
		if r.bad == nil && x != byte(seq) {
			r.bad = fmt.Errorf("chunk %d damaged", seq)
		}
	}
	r.chunks++
	r.maxDelay = max(r.maxDelay, now-at)
}

// end records how reading ended at offset now.
func (r *streamRecv) end(err error, now time.Duration) {
	switch {
	case errors.Is(err, io.EOF):
		r.eof = true
	case errors.Is(err, net.ErrClosed):
		r.err = errors.New("reading: receiving end reset (aborted)")
	default:
		r.err = fmt.Errorf("reading: %w", err)
		r.gap(now) // a read that timed out waited for data all along
	}
}

func (s *RunningStream) result() *StreamResult {
	tx, rx := &s.tx, &s.rx
	r := &StreamResult{
		From: s.o.From, To: s.o.To, Addr: netip.AddrPortFrom(s.o.Addr, uint16(s.o.Port)).String(), Start: s.start,
		ChunksSent: tx.chunks, ChunksReceived: rx.chunks, BytesSent: tx.bytes, BytesReceived: rx.bytes,
		DurationMS: ms(s.stopAt.Sub(s.start)), LongestStallMS: ms(rx.stall), StallStartMS: ms(rx.stallStart),
		MaxDelayMS: ms(rx.maxDelay),
	}
	r.Why = verdict(tx, rx)
	r.Survived = r.Why == ""
	return r
}

// verdict says why a stream did not survive, or "" when it did.
func verdict(tx *streamSend, rx *streamRecv) string {
	switch {
	case tx.err != nil:
		return "sender: " + tx.err.Error()
	case rx.err != nil && rx.bytes < tx.bytes:
		return fmt.Sprintf("receiver: %v, %d of %d bytes received", rx.err, rx.bytes, tx.bytes)
	case rx.err != nil:
		return "receiver: " + rx.err.Error()
	case rx.bad != nil:
		return "receiver: " + rx.bad.Error()
	case !rx.eof || rx.bytes != tx.bytes:
		return fmt.Sprintf("%d of %d bytes received", rx.bytes, tx.bytes)
	}
	return ""
}
