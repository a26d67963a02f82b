package udp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a UDP socket bound to one address with batched I/O. ReadBatch may
// run concurrently with WriteBatch; concurrent ReadBatch calls (and
// concurrent WriteBatch calls) are serialised by a lock each. After Close
// both return an error matching net.ErrClosed.
type Conn struct {
	pc    *net.UDPConn
	rc    syscall.RawConn
	local netip.AddrPort
	v6    bool
	gro   bool
	gso   atomic.Bool // cleared when the kernel refuses a GSO send

	rmu sync.Mutex // guards r
	r   batch
	wmu sync.Mutex // guards w
	w   batch
}

// batch is the preallocated syscall state of one direction.
type batch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte
	owner []int         // WriteBatch: message index of each header
	cnt   int           // hdrs in use for the current syscall
	got   int           // result of the last syscall
	errno syscall.Errno // error of the last syscall
	fn    func(fd uintptr) bool
}

const (
	oobLen    = 32 // room for one cmsg with an int (CMSG_SPACE(4) = 24)
	cmsgHdrSz = unix.SizeofCmsghdr
)

// Listen opens a UDP socket bound to laddr (IPv4 or IPv6, a specific
// address) in the network namespace of the calling thread. The address may
// be absent from the system still (IP_FREEBIND): a virtual IP claimed
// later.
func Listen(laddr netip.AddrPort, o Options) (*Conn, error) {
	if !laddr.Addr().IsValid() || laddr.Addr().IsUnspecified() {
		return nil, fmt.Errorf("listening on udp %s: a specific local address is needed", laddr)
	}
	laddr = netip.AddrPortFrom(laddr.Addr().Unmap(), laddr.Port())
	v6 := laddr.Addr().Is6()
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	if o.Batch <= 0 {
		o.Batch = 128
	}
	if o.RecvBuf <= 0 {
		o.RecvBuf = 4 << 20
	}
	if o.SendBuf <= 0 {
		o.SendBuf = 4 << 20
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if v6 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr.String())
	if err != nil {
		return nil, fmt.Errorf("listening on udp %s: %w", laddr, err)
	}
	c := &Conn{pc: pc.(*net.UDPConn), local: laddr, v6: v6}
	if ap, ok := netip.AddrFromSlice(c.pc.LocalAddr().(*net.UDPAddr).IP); ok {
		c.local = netip.AddrPortFrom(ap.Unmap(), uint16(c.pc.LocalAddr().(*net.UDPAddr).Port))
	}
	c.rc, err = c.pc.SyscallConn()
	if err != nil {
		c.pc.Close()
		return nil, fmt.Errorf("listening on udp %s: %w", laddr, err)
	}
	gso, gro := false, false
	err = c.rc.Control(func(fd uintptr) {
		setBuf(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, o.RecvBuf)
		setBuf(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, o.SendBuf)
		if !o.NoGSO {
			// Probing UDP_SEGMENT as wireguard-go does (conn/features_linux.go).
			_, e := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			gso = e == nil
		}
		if !o.NoGRO {
			gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
		}
	})
	if err != nil {
		c.pc.Close()
		return nil, fmt.Errorf("setting options on udp %s: %w", laddr, err)
	}
	c.gso.Store(gso)
	c.gro = gro
	c.r.init(o.Batch)
	c.w.init(o.Batch)
	c.r.fn = c.recvmmsg
	c.w.fn = c.sendmmsg
	return c, nil
}

func setBuf(fd, force, plain, size int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, size)
	}
}

func (b *batch) init(n int) {
	b.hdrs = make([]unix.Mmsghdr, n)
	b.iovs = make([]unix.Iovec, n)
	b.names = make([]unix.RawSockaddrInet6, n)
	b.oob = make([]byte, n*oobLen)
	b.owner = make([]int, n)
	for i := range b.hdrs {
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
	}
}

// LocalAddr returns the bound address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Offloads reports whether UDP GSO and GRO are in use.
func (c *Conn) Offloads() (gso, gro bool) { return c.gso.Load(), c.gro }

// Close closes the socket; a second call returns nil.
func (c *Conn) Close() error {
	err := c.pc.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (c *Conn) recvmmsg(fd uintptr) bool {
	b := &c.r
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.cnt), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.got, b.errno = int(n), e
	return true
}

func (c *Conn) sendmmsg(fd uintptr) bool {
	b := &c.w
	n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.cnt), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.got, b.errno = int(n), e
	return true
}

// ReadBatch receives up to len(msgs) messages (at most Options.Batch),
// blocking until at least one is there. It sets N, Addr and Segment of
// each filled message and returns their number. It does not allocate.
func (c *Conn) ReadBatch(msgs []Message) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	b := &c.r
	n := min(len(msgs), len(b.hdrs))
	if n == 0 {
		return 0, nil
	}
	for i := range n {
		m := &msgs[i]
		b.iovs[i].Base = unsafe.SliceData(m.Buf)
		b.iovs[i].SetLen(len(m.Buf))
		h := &b.hdrs[i]
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
		if c.gro {
			h.Hdr.Control = &b.oob[i*oobLen]
			h.Hdr.SetControllen(oobLen)
		}
		h.Hdr.Flags = 0
		h.Len = 0
	}
	b.cnt = n
	b.got, b.errno = 0, 0
	if err := c.rc.Read(b.fn); err != nil {
		return 0, err
	}
	if b.errno != 0 {
		return 0, fmt.Errorf("recvmmsg on %s: %w", c.local, b.errno)
	}
	for i := range b.got {
		m := &msgs[i]
		h := &b.hdrs[i]
		m.N = int(h.Len)
		m.Segment = 0
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			m.N = 0
		}
		m.Addr = c.sockaddr(&b.names[i])
		if c.gro && h.Hdr.Controllen > 0 {
			m.Segment = groSize(b.oob[i*oobLen : i*oobLen+int(h.Hdr.Controllen)])
			if m.Segment >= m.N {
				m.Segment = 0
			}
		}
	}
	return b.got, nil
}

// groSize returns the segment size in a UDP_GRO control message, or 0.
func groSize(oob []byte) int {
	for len(oob) >= cmsgHdrSz {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < cmsgHdrSz || l > len(oob) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && l >= cmsgHdrSz+4 {
			return int(binary.NativeEndian.Uint32(oob[cmsgHdrSz:]))
		}
		oob = oob[(l+7)&^7:]
	}
	return 0
}

func (c *Conn) sockaddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), ntohs(s4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(sa.Port))
	}
	return netip.AddrPort{}
}

func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// WriteBatch sends msgs: each is one datagram, or with Segment > 0 a run of
// datagrams (at most MaxSegments, at most MaxGSOSize bytes), sent with UDP
// GSO when the kernel has it and as separate datagrams otherwise. It tries
// every message: one that fails is skipped. It returns the number of
// messages sent and the first error. It does not allocate.
func (c *Conn) WriteBatch(msgs []Message) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var first error
	sent := 0
	b := &c.w
	segOff := 0 // bytes of msgs[0] already sent as separate segments
	for len(msgs) > 0 {
		// Fill the headers from msgs[0:used].
		j, used := 0, 0
		gso := c.gso.Load()
		for used < len(msgs) && j < len(b.hdrs) {
			m := &msgs[used]
			if segOff == 0 {
				m.Failed = false
			}
			if !c.putName(&b.names[j], m.Addr) {
				m.Failed = true
				if first == nil {
					first = fmt.Errorf("sending to %s from %s: %w", m.Addr, c.local, ErrFamily)
				}
				used++
				continue
			}
			seg := m.Segment
			if seg <= 0 || seg >= len(m.Buf) {
				b.owner[j] = used
				c.fill(j, m.Buf, 0)
				j++
				used++
				continue
			}
			if gso {
				b.owner[j] = used
				c.fill(j, m.Buf, seg)
				j++
				used++
				continue
			}
			// No GSO: one header per segment; a run longer than the
			// headers left continues in the next syscall at segOff.
			for segOff < len(m.Buf) && j < len(b.hdrs) {
				hi := min(segOff+seg, len(m.Buf))
				c.putName(&b.names[j], m.Addr)
				b.owner[j] = used
				c.fill(j, m.Buf[segOff:hi], 0)
				segOff = hi
				j++
			}
			if segOff < len(m.Buf) {
				break
			}
			segOff = 0
			used++
		}
		if j > 0 {
			if err := c.send(j, msgs); err != nil {
				if errors.Is(err, unix.EIO) && gso {
					// The kernel refused GSO (a device without
					// checksum offload): wireguard-go does the same.
					c.gso.Store(false)
					continue
				}
				if first == nil {
					first = err
				}
				if errors.Is(err, net.ErrClosed) {
					return sent, first
				}
			}
		}
		sent += used
		msgs = msgs[used:]
	}
	return sent, first
}

// fill sets header j to send buf, with a UDP_SEGMENT control message when
// seg > 0.
func (c *Conn) fill(j int, buf []byte, seg int) {
	b := &c.w
	b.iovs[j].Base = unsafe.SliceData(buf)
	b.iovs[j].SetLen(len(buf))
	h := &b.hdrs[j]
	if c.v6 {
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
	} else {
		h.Hdr.Namelen = unix.SizeofSockaddrInet4
	}
	h.Hdr.Flags = 0
	h.Len = 0
	if seg == 0 {
		h.Hdr.Control = nil
		h.Hdr.SetControllen(0)
		return
	}
	oob := b.oob[j*oobLen : j*oobLen+oobLen]
	ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	ch.Level = unix.IPPROTO_UDP
	ch.Type = unix.UDP_SEGMENT
	ch.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[cmsgHdrSz:], uint16(seg))
	h.Hdr.Control = &oob[0]
	h.Hdr.SetControllen(unix.CmsgSpace(2))
}

func (c *Conn) putName(sa *unix.RawSockaddrInet6, ap netip.AddrPort) bool {
	a := ap.Addr().Unmap()
	p := ap.Port()
	if c.v6 {
		if !a.Is6() {
			return false
		}
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		pb := (*[2]byte)(unsafe.Pointer(&sa.Port))
		pb[0], pb[1] = byte(p>>8), byte(p)
		return true
	}
	if !a.Is4() {
		return false
	}
	s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
	pb := (*[2]byte)(unsafe.Pointer(&s4.Port))
	pb[0], pb[1] = byte(p>>8), byte(p)
	return true
}

// send sends headers [0, n); a header the kernel refuses is skipped and
// its message marked Failed.
func (c *Conn) send(n int, msgs []Message) error {
	b := &c.w
	var first error
	start := 0
	for start < n {
		b.cnt = n - start
		b.got, b.errno = 0, 0
		if start > 0 {
			// sendmmsg starts at hdrs[0]: shift the rest down.
			copy(b.hdrs, b.hdrs[start:n])
			copy(b.iovs, b.iovs[start:n])
			copy(b.names, b.names[start:n])
			copy(b.oob, b.oob[start*oobLen:n*oobLen])
			copy(b.owner, b.owner[start:n])
			for i := range n - start {
				h := &b.hdrs[i].Hdr
				h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
				h.Iov = &b.iovs[i]
				if h.Control != nil {
					h.Control = &b.oob[i*oobLen]
				}
			}
			n -= start
			start = 0
		}
		if err := c.rc.Write(b.fn); err != nil {
			failAll(b.owner[:n], msgs)
			return err
		}
		if b.errno != 0 {
			err := fmt.Errorf("sendmmsg on %s: %w", c.local, b.errno)
			if b.errno == unix.EIO {
				failAll(b.owner[:n], msgs)
				return err
			}
			if first == nil {
				first = err
			}
			msgs[b.owner[0]].Failed = true
			start = 1 // skip the failing header
			continue
		}
		start = b.got
		if b.got == 0 {
			break
		}
	}
	return first
}

func failAll(owners []int, msgs []Message) {
	for _, o := range owners {
		msgs[o].Failed = true
	}
}
