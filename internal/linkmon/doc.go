// Package linkmon watches the carrier and operational state of network
// interfaces through rtnetlink link notifications (RTNLGRP_LINK), the
// modern form of the seed's MII link monitoring: a pulled cable, a dead
// switch port or a peer veth set down shows up as an Event with
// Carrier false within milliseconds, with no polling.
//
// Carrier is the kernel's IFF_LOWER_UP flag (what `ip link` shows as
// LOWER_UP / NO-CARRIER). Run subscribes with a dump of the existing links
// and re-subscribes (with a fresh dump) if the subscription breaks, for
// example after the socket buffer overflowed (ENOBUFS), so the state always
// converges to the kernel's.
//
// Why it also polls: the kernel flips the carrier bit at once, but sends the
// RTM_NEWLINK notification from its linkwatch worker, which batches
// "non-urgent" events for up to one second after the previous run
// (net/core/link_watch.c, linkwatch_schedule_work). Only devices whose
// ifindex differs from their iflink (stacked devices) or LAG members are
// urgent (linkwatch_urgent_event). So a plain physical NIC, and also a veth
// whose peer in another namespace happens to have the SAME ifindex (common
// in labs: each new namespace numbers from 1, lo=1, first veth=2), reports a
// carrier change up to a second late; measured here on kernel 6.18: no
// notification for a whole second. An RTM_GETLINK reads the carrier bit
// directly (and makes the kernel run linkwatch for that device), so the
// monitor also reads each monitored interface every Options.Poll (default
// 20 ms), which bounds detection latency by the poll period. The cost is one
// netlink round trip per interface per period.
//
// The package only reports; deciding what a carrier loss means (fail over,
// become ineligible) is the cluster's job.
package linkmon
