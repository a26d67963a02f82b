// Package resources runs the ordered resource group of a gateway, the
// seed's haresources line
//
//	cluster1 116.1.1.1/28 192.168.0.1/24 ipsec gre zebra bgpd
//
// done as typed resources: VIPs, the tunnel, IKE, BGP and LSB scripts.
//
// A Group starts its members in configuration order and stops them in
// reverse. Every step runs under its resource's deadline (config
// resources[].timeout). If a start fails or runs out of time the Group rolls
// back: it stops, in reverse, every member that is not known to be stopped
// (the failed one included, since it may be half started), and Start returns
// a *StepError so that the caller hands over to the peer. A step that does
// not return after its deadline (plus a short grace) is abandoned: the Group
// goes on and records it as timed out; WaitIdle waits for such calls.
//
// Member states (State):
//
//	unknown --start--> starting --ok--> running --stop--> stopping --ok--> stopped
//	                       |                                  |
//	                       +------------error/timeout---------+--> failed
//
// Idempotency: Start skips members already running, Stop skips members
// already stopped (a fresh Group knows nothing, so its first Stop stops
// everything: a clean slate after a crash). Resources themselves are
// idempotent too: a VIP already present is fine, LSB start of a running
// service and stop of a stopped one succeed.
//
// Every transition is recorded as a Timeline (each step's start time,
// duration and result), plain data for `havpn status` and JSON, and as
// Prometheus metrics: havpn_resource_state{name} (the State number) and
// havpn_resource_step_seconds{name,op} (a histogram; op is start or stop).
//
// Types: vip (package vip), script (LSB init script, see Script), and
// tunnel, ike and bgp through the Starter interface that those parts
// implement and the daemon registers by resource name; until then NotWired
// stands in and logs that it is not wired, while order and deadlines are
// real.
//
// A Group is safe for concurrent use. Start and Stop are serialised, and a
// Stop cancels a Start in progress (which then rolls back) before it runs.
package resources
