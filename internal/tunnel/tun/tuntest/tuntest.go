// Package tuntest has an in-memory tun.Device for tests and benchmarks, in
// the manner of golang.zx2c4.com/wireguard/tun/tuntest.
//
// Packets sent on ToTunnel are what the kernel would route into the tunnel
// (Device.Read returns them); packets the dataplane writes (Device.Write)
// arrive on FromTunnel, or go to the OnWrite hook when one is set.
package tuntest

import (
	"os"
	"sync"
)

// Device is an in-memory tun.Device. Its fields must be set before first
// use; the methods are safe as tun.Device requires.
type Device struct {
	// ToTunnel feeds Read. Read blocks for the first packet and then
	// takes what is queued, up to the batch size.
	ToTunnel chan []byte
	// FromTunnel receives a copy of every written packet when OnWrite is
	// nil; a full channel blocks Write until Close.
	FromTunnel chan []byte
	// OnWrite, when set, is called with each written packet instead of
	// FromTunnel (no copy: it must not keep the slice). Benchmarks use it
	// to write without allocating.
	OnWrite func(pkt []byte)

	name   string
	batch  int
	once   sync.Once
	closed chan struct{}
}

// New returns a Device named name that reads up to batch packets at once;
// its channels have room for queue packets.
func New(name string, batch, queue int) *Device {
	if batch < 1 {
		batch = 1
	}
	return &Device{
		ToTunnel:   make(chan []byte, queue),
		FromTunnel: make(chan []byte, queue),
		name:       name,
		batch:      batch,
		closed:     make(chan struct{}),
	}
}

// Read implements tun.Device.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var pkt []byte
	select {
	case <-d.closed:
		return 0, os.ErrClosed
	case pkt = <-d.ToTunnel:
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
		if n == len(bufs) || n == d.batch {
			return n, nil
		}
		select {
		case pkt = <-d.ToTunnel:
		default:
			return n, nil
		}
	}
}

// Write implements tun.Device.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	total := 0
	for _, b := range bufs {
		pkt := b[offset:]
		if d.OnWrite != nil {
			d.OnWrite(pkt)
			total += len(pkt)
			continue
		}
		c := make([]byte, len(pkt))
		copy(c, pkt)
		select {
		case <-d.closed:
			return total, os.ErrClosed
		case d.FromTunnel <- c:
			total += len(pkt)
		}
	}
	return total, nil
}

// BatchSize implements tun.Device.
func (d *Device) BatchSize() int { return d.batch }

// Name implements tun.Device.
func (d *Device) Name() string { return d.name }

// Close implements tun.Device; the channels stay open.
func (d *Device) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// Closed is closed by Close.
func (d *Device) Closed() <-chan struct{} { return d.closed }
