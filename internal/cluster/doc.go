// Package cluster is the heartbeat cluster: keepalives over every configured
// link at once, membership, and the election of exactly one active node. It
// emits role events and does no side effects itself (no addresses, no
// routes): the daemon acts on the events.
//
// Work in progress: see heartbeat.go for the wire format.
package cluster
