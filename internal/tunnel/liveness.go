package tunnel

import (
	"context"
	"time"

	"github.com/havpn/havpn/internal/tunnel/esp"
	"github.com/havpn/havpn/internal/tunnel/udp"
)

// Event is a tunnel's liveness change.
type Event struct {
	Tunnel string
	// Up is true when the peer is heard from again, false when it was
	// silent for the dead interval.
	Up bool
	At time.Time
}

type subscriber struct {
	ch chan Event
}

// Subscribe returns a channel of liveness events with room for buffer
// events (at least 1) and a function that ends the subscription. A
// subscriber that falls behind loses its oldest events, never the newest:
// the last event of a tunnel is always its current state.
func (m *Manager) Subscribe(buffer int) (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, max(buffer, 1))}
	m.subMu.Lock()
	m.subs[s] = struct{}{}
	m.subMu.Unlock()
	return s.ch, func() {
		m.subMu.Lock()
		delete(m.subs, s)
		m.subMu.Unlock()
	}
}

func (m *Manager) publish(e Event) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	for s := range m.subs {
		for {
			select {
			case s.ch <- e:
			default:
				select {
				case <-s.ch: // drop the oldest
				default:
				}
				continue
			}
			break
		}
	}
}

// keepalive timing when the config leaves it out.
const (
	defaultKeepalive = 100 * time.Millisecond
	defaultDead      = 500 * time.Millisecond
)

// livenessLoop sends keepalives and tracks Up/Down until ctx ends.
func (t *Tunnel) livenessLoop(ctx context.Context) {
	interval, dead := t.cfg.Keepalive.Interval.D(), t.cfg.Keepalive.Dead.D()
	if interval <= 0 {
		interval = defaultKeepalive
	}
	if dead <= interval {
		dead = max(defaultDead, 5*interval)
	}
	buf := make([]byte, esp.HeaderLen+esp.MaxTrailer)
	msgs := make([]udp.Message, 1)
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		now := t.m.now()
		t.tick(now, dead)
		if !t.txSeen.Swap(false) {
			t.sendKeepalive(buf, msgs)
		}
	}
}

// tick updates the liveness state at now.
func (t *Tunnel) tick(now time.Time, dead time.Duration) {
	seen := t.rxSeen.Swap(false)
	t.stateMu.Lock()
	var changed bool
	if seen {
		t.lastRx = now
		if !t.up {
			t.up, t.since, changed = true, now, true
		}
	} else if t.up && now.Sub(t.lastRx) >= dead {
		t.up, t.since, changed = false, now, true
	}
	up := t.up
	t.stateMu.Unlock()
	if changed {
		t.c.stateChanges.Add(1)
		if up {
			t.m.log.Info("tunnel up", "tunnel", t.name)
		} else {
			t.m.log.Warn("tunnel down: peer silent", "tunnel", t.name, "dead", dead)
		}
		t.m.publish(Event{Tunnel: t.name, Up: up, At: now})
	}
}

// sendKeepalive sends an ESP dummy packet (RFC 4303 §2.6: next header 59,
// empty payload) with the sending SA, if there is one.
func (t *Tunnel) sendKeepalive(buf []byte, msgs []udp.Message) {
	out := t.out.Load()
	if out == nil {
		return
	}
	n, err := out.out.Seal(buf, 0, esp.NextHeaderNoNext)
	if err != nil {
		if err == esp.ErrSeqExhausted {
			t.c.out[outSeqExhausted].Add(1)
		} else {
			t.c.out[outSeal].Add(1)
		}
		return
	}
	msgs[0] = udp.Message{Buf: buf[:n], Addr: out.remote}
	if _, err := out.sock.conn.WriteBatch(msgs); err != nil {
		t.c.out[outUDPWrite].Add(1)
		return
	}
	t.c.kaSent.Add(1)
}
