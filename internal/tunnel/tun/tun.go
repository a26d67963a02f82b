package tun

import "net/netip"

// Device is a TUN interface with batched I/O. The shape is that of
// golang.zx2c4.com/wireguard/tun.Device without its OS extras.
//
// Read and Write may be called concurrently with each other, but Read must
// not be called concurrently with Read, nor Write with Write. After Close,
// Read and Write return an error that matches os.ErrClosed (errors.Is).
type Device interface {
	// Read reads one or more packets into bufs, each starting at
	// bufs[i][offset:], and stores their lengths in sizes. It returns the
	// number of packets. len(sizes) >= len(bufs) >= BatchSize() is
	// required when the device offloads, and every buffer must hold
	// offset+MaxPacket bytes. Errors other than os.ErrClosed (a malformed
	// super-packet, ErrTooManySegments) concern one read and must not
	// stop the caller from reading on.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// Write writes the packets bufs[i][offset:]. offset must be at least
	// Headroom: the bytes before the packet are scratch space for the
	// kernel header. With offloads on, Write may coalesce packets into the
	// spare capacity (cap) of the first packet of a flow, so every buffer
	// must own its capacity. It returns the number of bytes written.
	Write(bufs [][]byte, offset int) (int, error)
	// BatchSize is the number of packets Read may return at once; it never
	// changes.
	BatchSize() int
	// Name is the interface name.
	Name() string
	// Close removes the interface; a second call does nothing.
	Close() error
}

const (
	// Headroom is the least offset Device.Write accepts: room for the
	// virtio-net header the offloading Linux device puts in front.
	Headroom = 16
	// MaxPacket is the largest packet a Read can return in one buffer.
	MaxPacket = 65535
)

// Config describes the interface Create makes.
type Config struct {
	// Name is the interface name (at most 15 bytes).
	Name string
	// MTU of the interface.
	MTU int
	// Address is the local inner address with its prefix length; the
	// zero Prefix adds no address.
	Address netip.Prefix
	// Peer is the point-to-point peer address (same family as Address);
	// the zero Addr adds the address without a peer.
	Peer netip.Addr
	// TxQueueLen is the transmit queue length; 0 means 1000.
	TxQueueLen int
}
