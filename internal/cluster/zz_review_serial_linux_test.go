package cluster

// Serial heartbeat links over pseudo-terminal pairs: the serial transport
// alone (framing, resynchronisation, authentication on the line) and a
// Cluster pair whose only link is a "null-modem cable" made of two ptys and
// a relay that the test can cut.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/lab/labtest"
	"golang.org/x/sys/unix"

	"github.com/havpn/havpn/internal/config"
)

// openPTY returns the master of a new pseudo-terminal (non-blocking, so
// that Close unblocks a Read) and the path of its slave.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		labtest.Missing(t, "no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("ptsname: %v", err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { m.Close() })
	return m, fmt.Sprintf("/dev/pts/%d", n)
}

func testMessage(seq uint64) *Message {
	return &Message{NodeID: 2, Role: RoleStandby, Priority: 100, Flags: FlagEligible | FlagCarrierOK,
		Epoch: 1_700_000_000_000_000_000, Seq: seq, Uptime: time.Duration(seq) * time.Millisecond,
		SendTime: 1_700_000_000_000_000_000 + int64(seq), ConfigHash: ParseConfigHash("0011223344556677"),
		NAlive: 1, Alive: [MaxAlive]uint8{1}}
}

// TestSerialLinkPTY drives a serial link from the master side of a pty:
// frames between line noise, a frame cut short, a frame signed with
// another key; the link delivers exactly the authentic messages, in
// order. Then the link's own sends are read back from the master.
func TestSerialLinkPTY(t *testing.T) {
	master, slave := openPTY(t)
	key := []byte("serial-test-key-0123")
	l, err := openLink(config.Link{Name: "serial", Serial: slave, Baud: 115200}, 694, key)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	good, other := NewCodec(key), NewCodec([]byte("another-key-0123456"))
	var stream []byte
	var want [][]byte
	for seq := uint64(1); seq <= 6; seq++ {
		msg, err := good.Marshal(nil, testMessage(seq))
		if err != nil {
			t.Fatal(err)
		}
		switch seq {
		case 2: // noise, including a fake sync pair, before the frame
			stream = append(stream, 0x00, 0x7E, 0x7E, 0xA5, 0xFF, 0x13)
		case 3: // a frame cut short, then the real one
			stream = append(stream, AppendFrame(nil, msg)[:30]...)
		case 4: // a frame under another key: never delivered
			bad, _ := other.Marshal(nil, testMessage(99))
			stream = AppendFrame(stream, bad)
		}
		stream = AppendFrame(stream, msg)
		want = append(want, msg)
	}
	// Write in small pieces, as a slow line delivers them.
	go func() {
		for i := 0; i < len(stream); i += 7 {
			if _, err := master.Write(stream[i:min(i+7, len(stream))]); err != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	buf := make([]byte, MaxMessageLen+1)
	got := make(chan []byte)
	errc := make(chan error, 1)
	go func() {
		for range want {
			n, _, err := l.Recv(buf)
			if err != nil {
				errc <- err
				return
			}
			got <- bytes.Clone(buf[:n])
		}
	}()
	for i, w := range want {
		select {
		case g := <-got:
			if !bytes.Equal(g, w) {
				var m Message
				uerr := good.Unmarshal(g, &m)
				t.Fatalf("message %d: got %x (seq %d, %v), want seq %d", i, g, m.Seq, uerr, i+1)
			}
		case err := <-errc:
			t.Fatalf("Recv: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d (seq %d) not received", i, i+1)
		}
	}

	// The other direction: Send frames a message onto the line.
	msg, _ := good.Marshal(nil, testMessage(42))
	if err := l.Send(msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var d deframer
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m, ok := d.next(nil); ok {
			if !bytes.Equal(m, msg) {
				t.Fatalf("master read %x, want %x", m, msg)
			}
			break
		}
		master.SetReadDeadline(deadline)
		n, err := master.Read(d.space())
		if err != nil {
			t.Fatalf("reading the master: %v", err)
		}
		d.filled(n)
	}

	// Close unblocks a pending Recv with net.ErrClosed.
	rerr := make(chan error, 1)
	go func() { _, _, err := l.Recv(buf); rerr <- err }()
	time.Sleep(10 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-rerr:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Recv after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Recv still blocked after Close")
	}
}

// nullModem joins two pty masters: what one side's slave writes, the other
// side's slave reads, unless the cable is cut.
type nullModem struct {
	cut atomic.Bool
	wg  sync.WaitGroup
}

func newNullModem(t *testing.T, a, b *os.File) *nullModem {
	nm := &nullModem{}
	copyDir := func(dst, src *os.File) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				// EIO while no slave is open: wait for one.
				time.Sleep(time.Millisecond)
				continue
			}
			if !nm.cut.Load() {
				dst.Write(buf[:n])
			}
		}
	}
	nm.wg.Go(func() { copyDir(b, a) })
	nm.wg.Go(func() { copyDir(a, b) })
	t.Cleanup(func() {
		a.Close()
		b.Close()
		nm.wg.Wait()
	})
	return nm
}

// TestSerialClusterPair runs two Clusters whose only heartbeat link is a
// serial line (two ptys and a relay): one becomes active; cutting the line
// makes both active after deadtime (nothing else joins them); restoring it
// makes the lower ranked release at once.
func TestSerialClusterPair(t *testing.T) {
	ma, sa := openPTY(t)
	mb, sb := openPTY(t)
	nm := newNullModem(t, ma, mb)
	key := []byte("serial-cluster-key-0123")

	const keepalive, deadtime = 10 * time.Millisecond, 60 * time.Millisecond
	mk := func(name string, id, prio uint8, tty string, peer string, peerID uint8) *config.Config {
		return &config.Config{
			Version: 1,
			Node:    config.Node{Name: name, Site: "s1"},
			Cluster: &config.Cluster{
				NodeID: id, Priority: prio, Port: 694,
				Timers: config.Timers{Keepalive: config.Duration(keepalive), Warntime: config.Duration(30 * time.Millisecond),
					Deadtime: config.Duration(deadtime), Initdead: config.Duration(200 * time.Millisecond)},
				Peers: []config.Peer{{Name: peer, NodeID: peerID}},
				Links: []config.Link{{Name: "serial", Serial: tty, Baud: 115200}},
			},
		}
	}
	cfgs := map[string]*config.Config{
		"a": mk("a", 1, 150, sa, "b", 2),
		"b": mk("b", 2, 100, sb, "a", 1),
	}
	cs := map[string]*Cluster{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		c, err := New(cfgs[name], Options{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		cs[name] = c
		wg.Go(func() {
			if err := c.Run(ctx); err != nil {
				t.Errorf("%s: Run: %v", name, err)
			}
		})
		wg.Go(func() {
			for range c.Events() {
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	roles := func() string { return "a=" + cs["a"].Role().String() + " b=" + cs["b"].Role().String() }
	waitRoles := func(want string, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < limit {
			if roles() == want {
				return time.Since(start)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("roles %s, want %s within %v\na: %+v\nb: %+v", roles(), want, limit, cs["a"].Status().Peers, cs["b"].Status().Peers)
		return 0
	}

	waitRoles("a=active b=standby", 2*time.Second)
	// Stable for a while: the serial line alone keeps them apart.
	time.Sleep(10 * deadtime)
	if got := roles(); got != "a=active b=standby" {
		t.Fatalf("roles changed on a healthy serial line: %s", got)
	}
	st := cs["b"].Status()
	if len(st.Peers) != 1 || st.Peers[0].State != "alive" || len(st.Links) != 1 || st.Links[0].Kind != "serial" {
		t.Fatalf("b's status over serial: peers %+v links %+v", st.Peers, st.Links)
	}

	nm.cut.Store(true)
	d := waitRoles("a=active b=active", 10*deadtime)
	t.Logf("serial line cut: b active after %v (deadtime %v)", d, deadtime)

	nm.cut.Store(false)
	d = waitRoles("a=active b=standby", 10*deadtime)
	t.Logf("serial line back: b released after %v", d)
}
