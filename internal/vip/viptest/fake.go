// Package viptest is a fake vip backend (AddrManager and Announcer) that
// keeps addresses in memory and records every operation as one line of
// text, for golden-text tests of code that drives package vip.
package viptest

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/havpn/havpn/internal/vip"
)

// ErrInjected is what a Fake returns for an operation set to fail.
var ErrInjected = errors.New("viptest: injected failure")

// Fake implements vip.AddrManager and vip.Announcer in memory. Its zero
// value is ready; it is safe for concurrent use.
type Fake struct {
	mu    sync.Mutex
	addrs map[string]map[netip.Prefix]uint32 // iface -> prefix -> valid lifetime
	ops   []string
	// refreshes counts ReplaceAddr calls on an address already present.
	refreshes int
	sent      int
	fail      map[string]bool
}

var (
	_ vip.AddrManager = (*Fake)(nil)
	_ vip.Announcer   = (*Fake)(nil)
)

// Fail makes every later operation named op ("replace", "del", "has",
// "open", "send") fail with ErrInjected, or work again when on is false.
func (f *Fake) Fail(op string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]bool{}
	}
	f.fail[op] = on
}

func (f *Fake) failing(op string) bool { return f.fail[op] }

// ReplaceAddr implements vip.AddrManager. A refresh of an address already
// present is counted (Refreshes) but not recorded in Ops, so that golden
// text does not depend on timing.
func (f *Fake) ReplaceAddr(iface string, p netip.Prefix, validSec, preferredSec uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing("replace") {
		f.ops = append(f.ops, fmt.Sprintf("replace %s dev %s: failed", p, iface))
		return ErrInjected
	}
	if f.addrs == nil {
		f.addrs = map[string]map[netip.Prefix]uint32{}
	}
	if f.addrs[iface] == nil {
		f.addrs[iface] = map[netip.Prefix]uint32{}
	}
	if _, ok := f.addrs[iface][p]; ok {
		f.refreshes++
	} else {
		f.ops = append(f.ops, fmt.Sprintf("add %s dev %s valid_lft %d preferred_lft %d", p, iface, validSec, preferredSec))
	}
	f.addrs[iface][p] = validSec
	return nil
}

// DelAddr implements vip.AddrManager.
func (f *Fake) DelAddr(iface string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing("del") {
		f.ops = append(f.ops, fmt.Sprintf("del %s dev %s: failed", p, iface))
		return ErrInjected
	}
	if _, ok := f.addrs[iface][p]; ok {
		delete(f.addrs[iface], p)
		f.ops = append(f.ops, fmt.Sprintf("del %s dev %s", p, iface))
	}
	return nil
}

// HasAddr implements vip.AddrManager.
func (f *Fake) HasAddr(iface string, p netip.Prefix) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing("has") {
		return false, ErrInjected
	}
	_, ok := f.addrs[iface][p]
	return ok, nil
}

// Expire removes an address as the kernel does when its lifetime runs out.
func (f *Fake) Expire(iface string, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.addrs[iface], p)
}

// Open implements vip.Announcer.
func (f *Fake) Open(iface string, addr netip.Addr) (vip.Sender, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing("open") {
		f.ops = append(f.ops, fmt.Sprintf("open %s dev %s: failed", addr, iface))
		return nil, ErrInjected
	}
	f.ops = append(f.ops, fmt.Sprintf("open %s dev %s", addr, iface))
	return &sender{f: f, line: fmt.Sprintf("announce %s dev %s", addr, iface)}, nil
}

// Ops returns the recorded operations, one per line.
func (f *Fake) Ops() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.ops, "\n")
}

// Refreshes returns how many ReplaceAddr calls found the address present.
func (f *Fake) Refreshes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes
}

// Sent returns how many announcements were sent.
func (f *Fake) Sent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

type sender struct {
	f      *Fake
	line   string
	closed bool
}

func (s *sender) Send() error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.closed {
		return errors.New("viptest: send on closed sender")
	}
	if s.f.failing("send") {
		s.f.ops = append(s.f.ops, s.line+": failed")
		return ErrInjected
	}
	s.f.sent++
	s.f.ops = append(s.f.ops, s.line)
	return nil
}

func (s *sender) Close() error {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.f.ops = append(s.f.ops, "close "+strings.TrimPrefix(s.line, "announce "))
	}
	return nil
}
