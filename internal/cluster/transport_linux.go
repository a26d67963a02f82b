//go:build linux

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/havpn/havpn/internal/config"
)

// openLink opens the socket or serial device of one configured link in the
// calling thread's network namespace.
func openLink(l config.Link, port uint16, key []byte) (Link, error) {
	if l.Serial != "" {
		s, err := openSerial(l.Serial, l.Baud, key)
		if err != nil {
			return nil, fmt.Errorf("opening heartbeat link %s: %w", l.Name, err)
		}
		return s, nil
	}
	u, err := openUDP(l, port)
	if err != nil {
		return nil, fmt.Errorf("opening heartbeat link %s: %w", l.Name, err)
	}
	return u, nil
}

// udpLink is a UDP socket bound to one interface (SO_BINDTODEVICE) and the
// cluster port, sending to the peer's address or a multicast group.
type udpLink struct {
	kind string
	conn *net.UDPConn
	rc   syscall.RawConn
	sock int // the descriptor, for the polling loop
	dst  unix.Sockaddr

	from    unix.RawSockaddrAny // recvNonblock's source address buffer
	fromLen uint32
}

// Heartbeats ask for the front of the queue: SO_PRIORITY 6
// (TC_PRIO_INTERACTIVE, the highest without CAP_NET_ADMIN) and DSCP CS6
// (network control, RFC 4594 §3.2). Both are best effort.
const (
	heartbeatSockPriority = 6
	heartbeatTOS          = 0xc0
)

func openUDP(l config.Link, port uint16) (*udpLink, error) {
	ifi, err := net.InterfaceByName(l.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", l.Interface, err)
	}
	dst, kind := l.Peer, "unicast"
	if l.Group.IsValid() {
		dst, kind = l.Group, "multicast"
	}
	dst = dst.Unmap()
	v6 := dst.Is6()
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			s := int(fd)
			if serr = unix.SetsockoptString(s, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, l.Interface); serr != nil {
				serr = fmt.Errorf("binding to device %s: %w", l.Interface, serr)
				return
			}
			if kind == "multicast" {
				if serr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
					serr = fmt.Errorf("SO_REUSEADDR: %w", serr)
					return
				}
			}
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_PRIORITY, heartbeatSockPriority)
			if v6 {
				_ = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, heartbeatTOS)
			} else {
				_ = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_TOS, heartbeatTOS)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, net.JoinHostPort("", strconv.Itoa(int(port))))
	if err != nil {
		return nil, fmt.Errorf("listening on %s port %d: %w", l.Interface, port, err)
	}
	conn := pc.(*net.UDPConn)
	u := &udpLink{kind: kind, conn: conn}
	if u.rc, err = conn.SyscallConn(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("raw connection: %w", err)
	}
	u.rc.Control(func(fd uintptr) { u.sock = int(fd) })
	if kind == "multicast" {
		if err := joinGroup(conn, ifi, dst); err != nil {
			conn.Close()
			return nil, fmt.Errorf("joining %s on %s: %w", dst, l.Interface, err)
		}
	}
	if v6 {
		sa := &unix.SockaddrInet6{Port: int(port), Addr: dst.As16()}
		if dst.IsLinkLocalUnicast() || dst.IsMulticast() {
			sa.ZoneId = uint32(ifi.Index)
		}
		u.dst = sa
	} else {
		u.dst = &unix.SockaddrInet4{Port: int(port), Addr: dst.As4()}
	}
	return u, nil
}

func joinGroup(conn *net.UDPConn, ifi *net.Interface, group netip.Addr) error {
	g := &net.UDPAddr{IP: group.AsSlice()}
	if group.Is6() {
		p := ipv6.NewPacketConn(conn)
		return errors.Join(p.JoinGroup(ifi, g), p.SetMulticastInterface(ifi),
			p.SetMulticastHopLimit(1), p.SetMulticastLoopback(false))
	}
	p := ipv4.NewPacketConn(conn)
	return errors.Join(p.JoinGroup(ifi, g), p.SetMulticastInterface(ifi),
		p.SetMulticastTTL(1), p.SetMulticastLoopback(false))
}

func (u *udpLink) Kind() string { return u.kind }

// Send uses the descriptor directly (no Go poller, no allocation): the
// socket is non-blocking and only Run closes it, after the loop ended.
func (u *udpLink) Send(b []byte) error {
	return unix.Sendto(u.sock, b, unix.MSG_DONTWAIT, u.dst)
}

func (u *udpLink) Recv(b []byte) (int, netip.Addr, error) {
	n, from, err := u.conn.ReadFromUDPAddrPort(b)
	return n, from.Addr().Unmap(), err
}

func (u *udpLink) fd() int { return u.sock }

// recvNonblock is recvfrom(2) with MSG_DONTWAIT into the link's own
// address buffer: unlike unix.Recvfrom it allocates nothing.
func (u *udpLink) recvNonblock(b []byte) (int, netip.Addr, bool, error) {
	if len(b) == 0 {
		return 0, netip.Addr{}, false, nil
	}
	u.fromLen = unix.SizeofSockaddrAny
	r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(u.sock), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&u.from)), uintptr(unsafe.Pointer(&u.fromLen)))
	switch errno {
	case 0:
	case unix.EAGAIN, unix.EINTR:
		return 0, netip.Addr{}, false, nil
	default:
		return 0, netip.Addr{}, false, errno
	}
	var from netip.Addr
	switch u.from.Addr.Family {
	case unix.AF_INET:
		from = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&u.from)).Addr)
	case unix.AF_INET6:
		from = netip.AddrFrom16((*unix.RawSockaddrInet6)(unsafe.Pointer(&u.from)).Addr).Unmap()
	}
	return int(r), from, true, nil
}

func (u *udpLink) Close() error {
	err := u.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// serialLink is a tty in raw mode, 8N1, no flow control, carrying framed
// heartbeats (frame.go).
type serialLink struct {
	f       *os.File
	rc      syscall.RawConn
	sysfd   int
	d       deframer
	accept  func([]byte) bool
	codec   *Codec
	scratch Message
	sendBuf [MaxFrameLen]byte
	once    sync.Once

	baud      int
	busyUntil time.Time        // the previous frame is on the line until then
	onDrop    func(DropReason) // counts frames that fail authentication
}

func (s *serialLink) setDropFunc(f func(DropReason)) { s.onDrop = f }

var baudRates = map[int]uint32{
	9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400,
	57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400,
}

func openSerial(path string, baud int, key []byte) (*serialLink, error) {
	speed, ok := baudRates[baud]
	if !ok {
		return nil, fmt.Errorf("serial %s: unsupported baud rate %d", path, baud)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening serial %s: %w", path, err)
	}
	if err := makeRaw(fd, speed); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("configuring serial %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path) // non-blocking: pollable
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("serial %s: %w", path, err)
	}
	s := &serialLink{f: f, rc: rc, sysfd: fd, codec: NewCodec(key), baud: baud}
	s.accept = func(b []byte) bool {
		err := s.codec.Unmarshal(b, &s.scratch)
		if err != nil && s.onDrop != nil {
			switch {
			case errors.Is(err, ErrAuth):
				s.onDrop(DropAuth)
			case errors.Is(err, ErrVersion):
				s.onDrop(DropVersion)
			default:
				s.onDrop(DropMalformed)
			}
		}
		return err == nil
	}
	return s, nil
}

// makeRaw is cfmakeraw(3) plus the speed, CLOCAL and CREAD.
func makeRaw(fd int, speed uint32) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("TCGETS: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CLOCAL | unix.CREAD | speed
	t.Ispeed, t.Ospeed = speed, speed
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("TCSETS: %w", err)
	}
	return nil
}

func (s *serialLink) Kind() string { return "serial" }

// Send writes one frame without blocking. It is paced by the line: a
// frame takes len*10/baud seconds (8N1), and a message offered before the
// previous frame can have left is skipped (errSkipped), so that a keepalive
// shorter than a frame's time on the wire does not fill the tty buffer with
// partial frames; the next heartbeat carries the current state. When the
// buffer is full anyway the frame (or its tail) is lost and the receiver
// resynchronises.
func (s *serialLink) Send(msg []byte) error {
	now := time.Now()
	if now.Before(s.busyUntil) {
		return errSkipped
	}
	frame := AppendFrame(s.sendBuf[:0], msg)
	n, err := unix.Write(s.sysfd, frame)
	if n > 0 {
		s.busyUntil = now.Add(time.Duration(n*10) * time.Second / time.Duration(s.baud))
	}
	switch {
	case err != nil:
		return err
	case n < len(frame):
		return fmt.Errorf("short write to serial: %d of %d bytes", n, len(frame))
	}
	return nil
}

func (s *serialLink) Recv(b []byte) (int, netip.Addr, error) {
	for {
		if msg, ok := s.d.next(s.accept); ok {
			return copy(b, msg), netip.Addr{}, nil
		}
		n, err := s.f.Read(s.d.space())
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return 0, netip.Addr{}, fmt.Errorf("serial read: %w", net.ErrClosed)
			}
			return 0, netip.Addr{}, err
		}
		s.d.filled(n)
	}
}

func (s *serialLink) fd() int { return s.sysfd }

func (s *serialLink) recvNonblock(b []byte) (int, netip.Addr, bool, error) {
	for {
		if msg, ok := s.d.next(s.accept); ok {
			return copy(b, msg), netip.Addr{}, true, nil
		}
		n, err := unix.Read(s.sysfd, s.d.space())
		switch {
		case errors.Is(err, unix.EAGAIN):
			return 0, netip.Addr{}, false, nil
		case err != nil:
			return 0, netip.Addr{}, false, fmt.Errorf("serial read: %w", err)
		case n == 0:
			return 0, netip.Addr{}, false, nil
		}
		s.d.filled(n)
	}
}

func (s *serialLink) Close() error {
	var err error
	s.once.Do(func() { err = s.f.Close() })
	return err
}
