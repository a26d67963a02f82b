package udp

import "net/netip"

// Message is one entry of a batch.
type Message struct {
	// Buf is, for ReadBatch, the receive buffer (its length is the room;
	// with GRO on it should hold 65535 bytes, else a coalesced run is
	// truncated and dropped), and for WriteBatch the bytes to send.
	Buf []byte
	// N is the number of bytes ReadBatch received into Buf; 0 for a
	// datagram that did not fit (dropped).
	N int
	// Addr is the sender (ReadBatch) or the destination (WriteBatch).
	Addr netip.AddrPort
	// Segment, when > 0, means Buf holds several datagrams of Segment bytes
	// each, the last one possibly shorter: received coalesced by UDP GRO,
	// or to be sent as such (UDP GSO when the kernel has it, else as
	// separate datagrams). 0 means one datagram.
	Segment int
	// Failed is set by WriteBatch when the kernel refused the message (or
	// a datagram of its run), cleared otherwise.
	Failed bool
}

// MaxSegments is the most datagrams one Message may carry for WriteBatch
// (the kernel's UDP_MAX_SEGMENTS is at least 64).
const MaxSegments = 64

// MaxGSOSize is the most bytes one Message with Segment > 0 may hold.
const MaxGSOSize = 65507

// Options tune Listen.
type Options struct {
	// Batch is the most messages one syscall handles; 0 means 128.
	Batch int
	// RecvBuf and SendBuf are the socket buffer sizes in bytes
	// (SO_RCVBUFFORCE when allowed, else SO_RCVBUF); 0 means 4 MiB.
	RecvBuf, SendBuf int
	// NoGSO and NoGRO turn the offloads off even when the kernel has them.
	NoGSO, NoGRO bool
}
