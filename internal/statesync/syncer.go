package statesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Syncer.
type Options struct {
	Log      *slog.Logger // required
	Node     uint8        // this node's cluster id
	Key      []byte       // HMAC key (the cluster key)
	Listen   netip.AddrPort
	Peer     netip.AddrPort // where updates go; only updates from its address are taken
	Interval time.Duration
	// Source lists what to send; called every Interval while sending.
	Source func() []Entry
	// Routes lists the routes to send with it (the first MaxRoutes); nil
	// sends none.
	Routes func() []Route
}

// Synced is the last sequence number heard for one SA.
type Synced struct {
	Entry
	At time.Time `json:"at"`
}

// Syncer sends this node's SA counters to the peer while active and keeps
// the peer's while standby. Its methods are safe for concurrent use.
type Syncer struct {
	o       Options
	conn    *net.UDPConn
	epoch   uint64
	msgSeq  atomic.Uint64
	sending atomic.Bool
	kick    chan struct{} // a new peer run appeared: send at once

	mu       sync.Mutex // guards the fields below
	last     map[key]Synced
	routes   []Route // the peer's last snapshot
	routesAt time.Time
	peerEp   uint64
	peerSeq  uint64
	received uint64
	dropped  uint64
}

type key struct {
	tunnel string
	spi    uint32
}

// New opens the socket; Run sends and receives.
func New(o Options) (*Syncer, error) {
	if o.Log == nil || len(o.Key) == 0 || o.Interval <= 0 || !o.Peer.IsValid() {
		return nil, errors.New("statesync: Log, Key, Interval and Peer are required")
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(o.Listen))
	if err != nil {
		return nil, fmt.Errorf("statesync: listening on %s: %w", o.Listen, err)
	}
	return &Syncer{o: o, conn: c, epoch: uint64(time.Now().UnixNano()), last: map[key]Synced{}, kick: make(chan struct{}, 1)}, nil
}

// SetSending turns sending on (active) or off (standby).
func (s *Syncer) SetSending(on bool) { s.sending.Store(on) }

// Last returns the peer's last reported sequence number of an SA.
func (s *Syncer) Last(tunnel string, spi uint32) (Synced, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.last[key{tunnel, spi}]
	return v, ok
}

// Routes returns the routes in the peer's last update and when it came;
// nil before the first.
func (s *Syncer) Routes() ([]Route, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routes, s.routesAt
}

// Status is plain data for `havpn status`.
type Status struct {
	Peer     string   `json:"peer"`
	Sending  bool     `json:"sending"`
	Received uint64   `json:"received"`
	Dropped  uint64   `json:"dropped"`
	SAs      []Synced `json:"sas"`
	Routes   int      `json:"routes"` // in the peer's last update
}

// Status returns a snapshot.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Peer: s.o.Peer.String(), Sending: s.sending.Load(), Received: s.received, Dropped: s.dropped, SAs: []Synced{}, Routes: len(s.routes)}
	for _, v := range s.last {
		st.SAs = append(st.SAs, v)
	}
	return st
}

// Run sends and receives until ctx ends, then closes the socket.
func (s *Syncer) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.receive()
	}()
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	s.tick()
	for {
		select {
		case <-ctx.Done():
			s.conn.Close()
			<-done
			return nil
		case <-t.C:
			s.tick()
		case <-s.kick:
			s.SendNow()
		}
	}
}

// tick sends the state while active; while standby it sends an empty
// message, so that an active peer hears a standby that just started and
// sends it the state at once instead of up to an interval later.
func (s *Syncer) tick() {
	if s.sending.Load() {
		s.send()
		return
	}
	s.write(Message{})
}

// SendNow sends an update at once (after SAs change).
func (s *Syncer) SendNow() {
	if s.sending.Load() {
		s.send()
	}
}

func (s *Syncer) send() {
	entries := s.o.Source()
	if len(entries) > MaxEntries {
		entries = entries[:MaxEntries]
	}
	var routes []Route
	if s.o.Routes != nil {
		routes = s.o.Routes()
		if len(routes) > MaxRoutes {
			routes = routes[:MaxRoutes]
		}
	}
	s.write(Message{Entries: entries, Routes: routes})
}

// write stamps m with this node's id, epoch and next sequence number and
// sends it to the peer.
func (s *Syncer) write(m Message) {
	m.Node, m.Epoch, m.Seq = s.o.Node, s.epoch, s.msgSeq.Add(1)
	b, err := Marshal(m, s.o.Key)
	if err != nil {
		s.o.Log.Warn("state sync message", "err", err)
		return
	}
	// A lost update is made good by the next one.
	s.conn.WriteToUDPAddrPort(b, s.o.Peer)
}

func (s *Syncer) receive() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		m, err := Unmarshal(buf[:n], s.o.Key)
		if err != nil || from.Addr().Unmap() != s.o.Peer.Addr().Unmap() {
			s.drop()
			continue
		}
		s.accept(m)
	}
}

// accept stores a message unless it is older than the last one accepted
// from the same sender run.
func (s *Syncer) accept(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Epoch < s.peerEp || m.Epoch == s.peerEp && m.Seq <= s.peerSeq {
		s.dropped++
		return
	}
	if m.Epoch != s.peerEp {
		select { // a new run of the peer: it has nothing yet
		case s.kick <- struct{}{}:
		default:
		}
	}
	s.peerEp, s.peerSeq = m.Epoch, m.Seq
	s.received++
	now := time.Now()
	for _, e := range m.Entries {
		s.last[key{e.Tunnel, e.SPI}] = Synced{Entry: e, At: now}
	}
	s.routes, s.routesAt = m.Routes, now
}

func (s *Syncer) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped++
}
