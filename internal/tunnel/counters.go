package tunnel

import "sync/atomic"

// inReason is why an inbound packet was dropped.
type inReason uint8

const (
	inNoSA       inReason = iota // no inbound SA with that SPI
	inShort                      // shorter than ESP header + trailer
	inReplay                     // replayed or older than the window
	inAuth                       // ICV did not verify
	inPadding                    // bad ESP padding
	inNextHeader                 // next header the tunnel's mode does not carry
	inGRE                        // malformed GRE header
	inGREKey                     // GRE key absent, present or different from the configured one
	inGREProto                   // GRE protocol other than IPv4/IPv6
	inInner                      // inner packet malformed (version, length)
	inTUNWrite                   // TUN write failed
	inTruncated                  // UDP datagram larger than the buffer
	numInReasons
)

var inReasonNames = [numInReasons]string{
	"no_sa", "short", "replay", "auth", "padding", "next_header", "gre", "gre_key",
	"gre_proto", "inner", "tun_write", "truncated",
}

// outReason is why an outbound packet was dropped.
type outReason uint8

const (
	outNoSA         outReason = iota // no active outbound SA
	outInner                         // not an IPv4/IPv6 packet
	outTooBig                        // larger than the tunnel MTU and not fragmentable (ICMP sent)
	outSeqExhausted                  // the SA's sequence numbers are used up: rekey
	outSeal                          // sealing failed otherwise
	outUDPWrite                      // the socket refused it
	outTUNRead                       // TUN read error (packets lost in the kernel's batch)
	numOutReasons
)

var outReasonNames = [numOutReasons]string{
	"no_sa", "inner", "too_big", "seq_exhausted", "seal", "udp_write", "tun_read",
}

// counters are a tunnel's statistics. Loops add per batch.
type counters struct {
	txPackets, txBytes, rxPackets, rxBytes atomic.Uint64
	kaSent, kaRecv                         atomic.Uint64
	icmpSent, icmpLimited                  atomic.Uint64
	stateChanges                           atomic.Uint64
	in                                     [numInReasons]atomic.Uint64
	out                                    [numOutReasons]atomic.Uint64
}

// sockCounters are a socket's statistics for what no tunnel owns.
type sockCounters struct {
	esp, ike, ikeDropped, natKeepalive, invalid, noSA, truncated, readErrors atomic.Uint64
}

// batchIn accumulates one batch's inbound counts for one tunnel, added to
// the tunnel's counters at once (fewer atomic operations on shared lines).
type batchIn struct {
	packets, bytes, ka uint64
	drops              [numInReasons]uint64
}

func (b *batchIn) flush(c *counters) {
	if b.packets != 0 {
		c.rxPackets.Add(b.packets)
		c.rxBytes.Add(b.bytes)
	}
	if b.ka != 0 {
		c.kaRecv.Add(b.ka)
	}
	for i, d := range b.drops {
		if d != 0 {
			c.in[i].Add(d)
		}
	}
	*b = batchIn{}
}

type batchOut struct {
	packets, bytes uint64
	drops          [numOutReasons]uint64
}

func (b *batchOut) flush(c *counters) {
	if b.packets != 0 {
		c.txPackets.Add(b.packets)
		c.txBytes.Add(b.bytes)
	}
	for i, d := range b.drops {
		if d != 0 {
			c.out[i].Add(d)
		}
	}
	*b = batchOut{}
}
