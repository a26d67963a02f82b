package ike

import (
	"fmt"
	"time"

	"github.com/havpn/havpn/internal/ike/wire"
)

// handleInformational answers an INFORMATIONAL request (RFC 7296 §1.4):
// deletes of child SAs (answered with the deletes of their inbound
// halves), delete of the IKE SA, and empty liveness checks.
func (sa *ikeSA) handleInformational(now time.Time, ps []wire.Payload) ([]wire.Payload, func(time.Time)) {
	var out []wire.Payload
	var after func(time.Time)
	var ours [][]byte
	for _, p := range ps {
		d, ok := p.(*wire.Delete)
		if !ok {
			continue
		}
		switch d.Protocol {
		case wire.ProtoIKE:
			if sa.state == stRekeyed {
				// Children already moved to the new IKE SA.
				after = func(now time.Time) { sa.destroy(now, "rekeyed", false) }
			} else {
				sa.logger().Info("peer deleted the IKE SA")
				after = func(now time.Time) { sa.destroy(now, "deleted by peer", false) }
			}
			return nil, after
		case wire.ProtoESP:
			o := sa.owner() // a Delete may still come over a rekeyed IKE SA
			for _, spi := range d.SPIs {
				if len(spi) != 4 {
					continue
				}
				s := be32(spi)
				for _, ch := range append([]*childSA(nil), o.children...) {
					if ch.outSPI != s {
						continue
					}
					if ch.successor != nil {
						o.activate(ch.successor)
					}
					if !ch.deleting {
						ours = append(ours, spiBytes32(ch.inSPI))
					}
					o.logger().Debug("peer deleted child SA", "in_spi", fmt.Sprintf("%08x", ch.inSPI))
					o.removeChild(ch)
				}
			}
		}
	}
	if len(ours) > 0 {
		out = append(out, &wire.Delete{Protocol: wire.ProtoESP, SPISize: 4, SPIs: ours})
	}
	return out, after
}
