// Package lab builds the havpn test bed of DESIGN.md's "Lab contract" in
// network namespaces on one machine, and breaks it on purpose:
//
//	s1host --lan-- [s1gw1 | s1gw2] --wan-- inet --wan-- [s2gw1 | s2gw2] --lan-- s2host
//
// Every node is a namespace named <prefix><node>. Every interface of a
// gateway or host is a veth whose peer sits on a bridge in a switch
// namespace (<prefix>s1sw, <prefix>s2sw for the LAN and heartbeat
// segments; inet for the WAN segments), so setting that peer down is a
// cable pull: the node sees NO-CARRIER, as with a real switch port.
//
// Everything is done through netlink (vishvananda/netlink) and setns: no
// iproute2 needed. The lab never touches the root namespace's interfaces,
// routes or firewall.
//
// A state file, <StateRoot>/<prefix>/state.json, is written as things are
// made, so Down can undo a crashed Up. Down also works without it: it
// removes every namespace with the prefix and kills only the processes
// living in those namespaces.
//
// Up, Down and the node operations need root. A Lab value is safe for use
// by one goroutine at a time; Probe may run concurrently with node
// operations.
package lab
