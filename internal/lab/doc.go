// Package lab builds the havpn test bed of DESIGN.md's "Lab contract" in
// network namespaces on one machine, and breaks it on purpose:
//
//	s1host --lan-- [s1gw1 | s1gw2] --wan-- inet --wan-- [s2gw1 | s2gw2] --lan-- s2host
//
// Every node is a namespace named <prefix><node> (DefaultPrefix "havpn-").
// Every interface of a gateway or host is a veth whose peer sits on a
// bridge in a switch namespace (<prefix>s1sw, <prefix>s2sw with bridges
// lan and hb; inet with bridges wan1 and wan2, which carry inet's own
// addresses), so setting that peer down is a cable pull: the node sees
// NO-CARRIER, as with a real switch port. Addresses, routes and forwarding
// are exactly DESIGN.md's (see Topology). Only two sites exist so far.
//
// Everything is done through netlink (vishvananda/netlink) and setns: no
// iproute2 needed. The lab never touches the root namespace's interfaces,
// routes or firewall.
//
// # Life cycle
//
// Up builds the lab, starts a UDP echo responder (`havpn lab echo`) in
// every node and, with Options.Daemons, one `havpn run` per gateway with a
// generated config (DaemonConfig), and waits until each answers status on
// its control socket. Open opens a lab that is up; Down removes it.
//
// A state file, <StateRoot>/<prefix>/state.json, is written (atomically)
// as things are made, so Down can undo a crashed Up. Down does not need
// it: it removes every namespace named prefix+node (inet, s<N>gw<M>,
// s<N>host, s<N>sw) and kills the processes living in those namespaces
// (found through /proc/PID/ns/net), and no others. Down is idempotent.
//
// # Breaking things
//
// Unplug/Plug pull and put back one cable; WaitLink waits for the node to
// see it. Poweroff pulls every cable of a node and SIGKILLs everything in
// it; Poweron reverses that. Kill, Freeze, Thaw and Restart act on a
// gateway's daemon. Probe (or StartProbe ... Stop, to break things while it
// runs) sends numbered UDP datagrams to the echo responders, or ICMP echo
// requests, and reports every loss window. StartStream runs a long TCP
// stream between two nodes (survived or not, longest stall; Abort resets
// it) and WatchAddr polls who holds an address every 10 ms. Exec,
// Command/Start and Do run commands or Go code inside a node.
//
// Up, Down and everything on a Lab need root and say so (ErrNotRoot). A
// Lab value is for one goroutine at a time, except that probes may run
// concurrently with each other and with node operations. Two processes
// changing one lab at once (two `havpn lab poweroff`) may lose one's update
// of the state file.
//
// Kernel behaviour worth knowing in drills: after a cable is put back, the
// first packets can still be lost for a few milliseconds while the kernel's
// link watcher activates the interface and the neighbour entries flushed
// by the carrier loss are resolved again, as on real hardware.
package lab
