// Package statesync keeps the standby's copy of the state a takeover needs
// (DESIGN.md, "Where it goes next"). So far that is the outbound ESP
// sequence number of each SA: the active sends it to its peer every
// interval, and a standby that takes over starts each outbound SA past the
// last number it heard plus a margin larger than anything the old active
// can have sent since. The other site's anti-replay window then accepts
// the new active's packets at once, with no re-keying.
//
// Wire format (version 2; version 1 had no routes), one UDP datagram, big
// endian:
//
//	magic "HVSS" | version 2 | node id | epoch (8) | msg seq (8) | count (2)
//	count x { tunnel name length (1) | name | spi (4) | esp seq (8) }
//	route count (2) | count x { family (1: 4|6) | prefix length (1) |
//	  address (4|16) | hop count (1) | hops x address (4|16) }
//	HMAC-SHA256 over all of the above (32)
//
// The message carries no key material (the keys are in both nodes'
// configs, or come from IKE), only counters, so it is authenticated with
// the cluster key but not encrypted. Messages older than the last accepted
// one from the same sender epoch are dropped (replay).
//
// Each message also carries the active's installed BGP routes (up to
// MaxRoutes, a whole snapshot): a standby that takes over puts them in its
// kernel before its own BGP sessions are up, so forwarding goes on
// (the routes are then stale and replaced or swept as BGP converges).
//
// Not yet synced: IKE SAs, conntrack entries; routes past MaxRoutes.
package statesync
