// Command bgp benchmarks installing a full table received over BGP into
// the kernel: havpn's speaker (GoBGP + package fib) against FRR 8
// (bgpd + zebra), side by side in one run.
//
// Each run builds two namespaces joined by a veth: a sender (a havpn
// speaker announcing N prefixes, in a helper process) and the receiver
// under test. The sender has its whole table before the link comes up.
// The link goes up at T0; a netlink listener in the receiver's namespace
// counts the routes of protocol 186 (bgp) as the kernel adds them. It
// reports the sender's session Established -> all N installed, first -> all
// installed, T0 -> all installed, the receiver's resident memory after the run and
// its peak (VmRSS, VmHWM; bgpd + zebra for FRR) and its CPU time.
//
// Usage (root): go run ./bench/bgp [-n 100000] [-out bench/bgp/last-run.md]
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/havpn/havpn/internal/bgp/bgptest"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/netnsutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const frrDir = "/usr/lib/frr"

func main() {
	bgptest.Main() // the helper processes are this binary
	n := flag.Int("n", 100_000, "prefixes in the table")
	out := flag.String("out", "bench/bgp/last-run.md", "markdown file for the results (\"\" for none)")
	noFRR := flag.Bool("no-frr", false, "skip the FRR run")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up on a run after this long")
	runs := flag.Int("runs", 3, "runs per receiver (alternating); the table shows the median run")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench/bgp: needs root (network namespaces)")
		os.Exit(2)
	}
	kinds := []string{"havpn"}
	if !*noFRR {
		if _, err := os.Stat(frrDir + "/bgpd"); err != nil {
			fmt.Fprintln(os.Stderr, "bench/bgp: FRR not installed (apt-get install frr), or pass -no-frr")
			os.Exit(2)
		}
		kinds = append(kinds, "frr")
	}
	load0 := loadavg()
	all := make(map[string][]result)
	for i := range *runs {
		for _, kind := range kinds {
			r, err := run(kind, *n, *timeout)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench/bgp: %s: %v\n", kind, err)
				os.Exit(1)
			}
			fmt.Fprintf(os.Stderr, "run %d %s: session up -> all %.2fs, first -> all %.2fs, link up -> all %.2fs, RSS %.0f MiB, CPU %.2fs\n",
				i+1, kind, r.sinceSession.Seconds(), r.sinceFirst.Seconds(), r.sinceUp.Seconds(), float64(r.rss)/1024, r.cpu.Seconds())
			all[kind] = append(all[kind], r)
		}
	}
	var results []result
	for _, kind := range kinds {
		results = append(results, median(all[kind]))
	}
	table := render(results) + "\n" + renderRuns(kinds, all)
	fmt.Print(table)
	if *out != "" {
		if err := writeReport(*out, table, *n, *runs, load0, loadavg()); err != nil {
			fmt.Fprintln(os.Stderr, "bench/bgp:", err)
			os.Exit(1)
		}
	}
}

type result struct {
	name         string
	routes       int
	sinceUp      time.Duration
	sinceFirst   time.Duration
	rss, hwm     int64 // KiB
	cpu          time.Duration
	eventsLost   bool
	sinceSession time.Duration // sender's session established -> all installed
}

// prefixes returns n distinct /25s inside 10.0.0.0/8 (at most 131072).
func prefixes(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		a := [4]byte{10, byte(i >> 9), byte(i >> 1), byte(i&1) * 128}
		out[i] = netip.PrefixFrom(netip.AddrFrom4(a), 25)
	}
	return out
}

func senderCfg(n int) *config.BGP {
	return &config.BGP{
		ASN: 65000, RouterID: netip.MustParseAddr("172.31.0.1"), ListenPort: 179,
		Neighbors: []config.Neighbor{{Address: netip.MustParseAddr("172.31.0.2"), RemoteAS: 65001,
			HoldTime: config.Duration(90 * time.Second), Keepalive: config.Duration(30 * time.Second)}},
		Networks: prefixes(n),
		FIB:      config.FIB{Table: 254, Protocol: 186, Multipath: true},
	}
}

func receiverCfg() *config.BGP {
	return &config.BGP{
		ASN: 65001, RouterID: netip.MustParseAddr("172.31.0.2"), ListenPort: 179,
		Neighbors: []config.Neighbor{{Address: netip.MustParseAddr("172.31.0.1"), RemoteAS: 65000,
			HoldTime: config.Duration(90 * time.Second), Keepalive: config.Duration(30 * time.Second)}},
		FIB: config.FIB{Table: 254, Protocol: 186, Multipath: true},
	}
}

// run measures one receiver kind ("havpn" or "frr").
func run(kind string, n int, timeout time.Duration) (res result, err error) {
	b := make([]byte, 3)
	rand.Read(b)
	prefix := "hb" + hex.EncodeToString(b) + "-"
	sNS, rNS := prefix+"s", prefix+"r"
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	for _, ns := range []string{sNS, rNS} {
		if err := netnsutil.Create(ns); err != nil {
			return res, err
		}
		cleanups = append(cleanups, func() { netnsutil.Delete(ns) })
	}
	sh, err := netnsutil.Handle(sNS)
	if err != nil {
		return res, err
	}
	defer sh.Close()
	rh, err := netnsutil.Handle(rNS)
	if err != nil {
		return res, err
	}
	defer rh.Close()
	if err := link(sh, rh, rNS); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "havpn-bench-bgp-")
	if err != nil {
		return res, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)

	// The sender gets its whole table while its link is down.
	slog := new(logBuf)
	sender, err := bgptest.Start(sNS, senderCfg(n), dir, nil, slog)
	if err != nil {
		return res, err
	}
	cleanups = append(cleanups, func() { sender.Close() })
	if _, err := sender.FIBStats(); err != nil { // answers once Start (and the AddPath) is done
		return res, fmt.Errorf("sender: %w; log:\n%s", err, slog.String())
	}

	var pids []int
	rlog := new(logBuf)
	switch kind {
	case "havpn":
		res.name = "havpn (GoBGP v4 + fib)"
		h, err := bgptest.Start(rNS, receiverCfg(), dir, nil, rlog)
		if err != nil {
			return res, err
		}
		cleanups = append(cleanups, func() { h.Close() })
		if _, err := h.FIBStats(); err != nil {
			return res, fmt.Errorf("receiver: %w; log:\n%s", err, rlog.String())
		}
		pids = []int{h.Pid()}
	case "frr":
		res.name = "FRR " + frrVersion() + " (bgpd + zebra)"
		ps, stop, err := startFRR(rNS, dir)
		cleanups = append(cleanups, stop)
		if err != nil {
			return res, err
		}
		pids = ps
	}
	cpu0 := cpuTime(pids)

	counter, err := newRouteCounter(rNS)
	if err != nil {
		return res, err
	}
	defer counter.close()
	t0 := time.Now()
	if err := setUp(sh, "s0"); err != nil {
		return res, err
	}
	first, last, lost, err := counter.wait(n, timeout)
	if err != nil {
		return res, fmt.Errorf("%w; receiver log:\n%.3000s", err, rlog.String())
	}
	if lost {
		// Events were dropped: the last one we saw is not the last
		// install; poll the table instead.
		last, err = pollCount(rh, n, t0.Add(timeout))
		if err != nil {
			return res, err
		}
	}
	res.routes, err = countRoutes(rh)
	if err != nil {
		return res, err
	}
	if res.routes < n {
		return res, fmt.Errorf("only %d of %d routes in the kernel", res.routes, n)
	}
	res.sinceUp = last.Sub(t0)
	res.sinceFirst = last.Sub(first)
	res.eventsLost = lost
	nbs, err := sender.Neighbors()
	if err != nil || len(nbs) != 1 || nbs[0].State != "established" {
		return res, fmt.Errorf("sender's session: %+v, %v", nbs, err)
	}
	res.sinceSession = last.Sub(nbs[0].Since)
	// Let the receiver settle (GC, zebra's queues), then read its memory.
	time.Sleep(time.Second)
	res.cpu = cpuTime(pids) - cpu0
	for _, p := range pids {
		rss, hwm := memory(p)
		res.rss += rss
		res.hwm += hwm
	}
	return res, nil
}

// link makes veth s0 (sender, 172.31.0.1/30, left down) <-> r0 (receiver,
// 172.31.0.2/30, up).
func link(sh, rh *netlink.Handle, rNS string) error {
	rns, err := netns.GetFromName(rNS)
	if err != nil {
		return err
	}
	defer rns.Close()
	la := netlink.NewLinkAttrs()
	la.Name = "s0"
	if err := sh.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "r0", PeerNamespace: netlink.NsFd(int(rns))}); err != nil {
		return fmt.Errorf("adding veth: %w", err)
	}
	for _, x := range []struct {
		h    *netlink.Handle
		dev  string
		cidr string
	}{{sh, "s0", "172.31.0.1/30"}, {rh, "r0", "172.31.0.2/30"}} {
		l, err := x.h.LinkByName(x.dev)
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(x.cidr)
		if err := x.h.AddrAdd(l, a); err != nil {
			return err
		}
		lo, _ := x.h.LinkByName("lo")
		x.h.LinkSetUp(lo)
	}
	return setUp(rh, "r0")
}

func setUp(h *netlink.Handle, dev string) error {
	l, err := h.LinkByName(dev)
	if err != nil {
		return err
	}
	return h.LinkSetUp(l)
}

func frrVersion() string {
	out, err := exec.Command(frrDir+"/bgpd", "--version").Output()
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "version" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return "?"
}

// startFRR starts zebra and bgpd (foreground, as user frr) in ns.
func startFRR(ns, dir string) ([]int, func(), error) {
	run := filepath.Join(dir, "frr")
	var cmds []*exec.Cmd
	stop := func() {
		for i := len(cmds) - 1; i >= 0; i-- {
			cmds[i].Process.Kill()
			cmds[i].Wait()
		}
	}
	if err := os.Mkdir(run, 0o755); err != nil {
		return nil, stop, err
	}
	u, err := user.Lookup("frr")
	if err != nil {
		return nil, stop, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	os.Chown(run, uid, gid)
	confs := map[string]string{
		"zebra": "hostname r\nlog file " + run + "/zebra.log warnings\n",
		"bgpd": "frr defaults traditional\nhostname r\nlog file " + run + "/bgpd.log warnings\n" +
			"router bgp 65001\n bgp router-id 172.31.0.2\n no bgp ebgp-requires-policy\n" +
			" neighbor 172.31.0.1 remote-as 65000\n neighbor 172.31.0.1 timers connect 1\n",
	}
	for _, d := range []string{"zebra", "bgpd"} {
		if err := os.WriteFile(filepath.Join(run, d+".conf"), []byte(confs[d]), 0o644); err != nil {
			return nil, stop, err
		}
		logf, err := os.Create(filepath.Join(run, d+".out"))
		if err != nil {
			return nil, stop, err
		}
		cmd := exec.Command(filepath.Join(frrDir, d), "-u", "frr", "-g", "frr",
			"-z", filepath.Join(run, "zserv.api"), "--vty_socket", run,
			"-i", filepath.Join(run, d+".pid"), "-f", filepath.Join(run, d+".conf"), "-P", "0")
		cmd.Stdout, cmd.Stderr = logf, logf
		err = netnsutil.Start(ns, cmd)
		logf.Close()
		if err != nil {
			return nil, stop, fmt.Errorf("starting %s: %w", d, err)
		}
		cmds = append(cmds, cmd)
		if d == "zebra" {
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := os.Stat(filepath.Join(run, "zserv.api")); err == nil {
					break
				}
				if time.Now().After(deadline) {
					return nil, stop, errors.New("zebra did not start")
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // bgpd reads its config
	return []int{cmds[0].Process.Pid, cmds[1].Process.Pid}, stop, nil
}

// routeCounter counts, from RTM_NEWROUTE/RTM_DELROUTE notifications, the
// IPv4 routes of protocol 186 in one namespace.
type routeCounter struct {
	fd int
}

func newRouteCounter(ns string) (*routeCounter, error) {
	var fd int
	err := netnsutil.Do(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_ROUTE})
	})
	if err != nil {
		return nil, fmt.Errorf("route listener: %w", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20)
	tv := unix.Timeval{Usec: 200_000}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &routeCounter{fd: fd}, nil
}

func (c *routeCounter) close() { unix.Close(c.fd) }

// wait returns the times of the first and of the n-th route of protocol
// 186 added, and whether notifications were lost (ENOBUFS).
func (c *routeCounter) wait(n int, timeout time.Duration) (first, last time.Time, lost bool, err error) {
	buf := make([]byte, 1<<20)
	seen := make(map[routeKey]bool, n)
	deadline := time.Now().Add(timeout)
	for len(seen) < n {
		if time.Now().After(deadline) {
			return first, last, lost, fmt.Errorf("%d of %d routes after %v", len(seen), n, timeout)
		}
		m, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err == unix.ENOBUFS {
			lost = true
			continue
		}
		if err != nil {
			return first, last, lost, err
		}
		now := time.Now()
		parseRouteEvents(buf[:m], func(ev routeEvent) {
			if ev.proto != 186 {
				return
			}
			if ev.add {
				if !seen[ev.key] {
					seen[ev.key] = true
					if first.IsZero() {
						first = now
					}
					last = now
				}
			} else {
				delete(seen, ev.key)
			}
		})
		if lost {
			return first, last, lost, nil
		}
	}
	return first, last, lost, nil
}

type routeKey struct {
	dst [4]byte
	len uint8
}

type routeEvent struct {
	add   bool
	proto uint8
	key   routeKey
}

// parseRouteEvents decodes the RTM_NEWROUTE/RTM_DELROUTE messages of an
// IPv4 route notification datagram; anything malformed ends the parse.
func parseRouteEvents(b []byte, fn func(routeEvent)) {
	ne := binary.NativeEndian
	for len(b) >= 16 {
		l := int(ne.Uint32(b))
		if l < 16 || l > len(b) {
			return
		}
		typ := ne.Uint16(b[4:])
		body := b[16:l]
		if (typ == unix.RTM_NEWROUTE || typ == unix.RTM_DELROUTE) && len(body) >= 12 && body[0] == unix.AF_INET {
			ev := routeEvent{add: typ == unix.RTM_NEWROUTE, proto: body[5]}
			ev.key.len = body[1]
			attrs := body[12:]
			for len(attrs) >= 4 {
				al := int(ne.Uint16(attrs))
				if al < 4 || al > len(attrs) {
					break
				}
				if ne.Uint16(attrs[2:]) == unix.RTA_DST && al == 8 {
					copy(ev.key.dst[:], attrs[4:8])
				}
				attrs = attrs[min((al+3)&^3, len(attrs)):]
			}
			fn(ev)
		}
		b = b[min((l+3)&^3, len(b)):]
	}
}

// countRoutes counts the IPv4 routes of protocol 186 in the main table.
func countRoutes(h *netlink.Handle) (int, error) {
	h.SetStrictCheck(true)
	cnt := 0
	var err error
	for range 5 {
		cnt = 0
		err = h.RouteListFilteredIter(netlink.FAMILY_V4, &netlink.Route{Protocol: 186, Table: 254},
			netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE, func(netlink.Route) bool { cnt++; return true })
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return cnt, err
}

func pollCount(h *netlink.Handle, n int, deadline time.Time) (time.Time, error) {
	for {
		c, err := countRoutes(h)
		if err != nil {
			return time.Time{}, err
		}
		if c >= n {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d of %d routes", c, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memory returns VmRSS and VmHWM of a process in KiB.
func memory(pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fs[1], 10, 64)
		switch fs[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

// cpuTime sums user+system CPU time of processes (from /proc/PID/stat).
func cpuTime(pids []int) time.Duration {
	var total time.Duration
	hz := 100 // USER_HZ on Linux
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * time.Second / time.Duration(hz)
	}
	return total
}

func render(rs []result) string {
	var b bytes.Buffer
	b.WriteString("| receiver | routes | session up -> all installed | first -> all installed | link up -> all installed | RSS after | peak RSS | CPU |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		note := ""
		if r.eventsLost {
			note = " (events lost: polled)"
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f s%s | %.2f s | %.2f s | %.0f MiB | %.0f MiB | %.2f s |\n",
			r.name, r.routes, r.sinceSession.Seconds(), note, r.sinceFirst.Seconds(), r.sinceUp.Seconds(),
			float64(r.rss)/1024, float64(r.hwm)/1024, r.cpu.Seconds())
	}
	return b.String()
}

// median returns the run with the median "session up -> all" time.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.sinceSession, b.sinceSession) })
	return s[len(s)/2]
}

// renderRuns lists every run's two times per receiver.
func renderRuns(kinds []string, all map[string][]result) string {
	var b bytes.Buffer
	b.WriteString("All runs (session up -> all / first -> all / link up -> all, seconds):\n\n")
	for _, k := range kinds {
		var parts []string
		for _, r := range all[k] {
			parts = append(parts, fmt.Sprintf("%.2f / %.2f / %.2f", r.sinceSession.Seconds(), r.sinceFirst.Seconds(), r.sinceUp.Seconds()))
		}
		fmt.Fprintf(&b, "- %s: %s\n", all[k][0].name, strings.Join(parts, "; "))
	}
	return b.String()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func writeReport(path, table string, n, runs int, load0, load1 string) error {
	var b bytes.Buffer
	host, _ := os.Hostname()
	var uts unix.Utsname
	unix.Uname(&uts)
	fmt.Fprintf(&b, "# BGP full table into the kernel: havpn vs FRR\n\n")
	fmt.Fprintf(&b, "Command: `%s` (as run by `bench/bgp/run.sh`, which builds it; `make bench-bgp`)  \n",
		strings.Join(append([]string{"bin/bench-bgp"}, os.Args[1:]...), " "))
	fmt.Fprintf(&b, "Date: %s; host %s, kernel %s, %d CPUs, %s; load average %s before, %s after.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), host, unix.ByteSliceToString(uts.Release[:]), runtime.NumCPU(),
		runtime.Version(), load0, load1)
	fmt.Fprintf(&b, "A sender (a havpn speaker in its own namespace, eBGP AS 65000) holds %d IPv4 /25s\n", n)
	b.WriteString("before its veth to the receiver (AS 65001) comes up. The end time is when the last\n")
	b.WriteString("route appears in kernel route notifications (protocol 186) in the receiver's namespace.\n")
	b.WriteString("\"Session up\" starts when the sender's session reached Established (the sender then\n")
	b.WriteString("sends its table; this is the install time asked for), \"first\" at the first route\n")
	b.WriteString("installed, \"link up\" when the link came up (adds TCP connect-retry timers: GoBGP\n")
	b.WriteString("retries every 2s at best, FRR here every 1s). RSS is VmRSS/VmHWM of the receiver\n")
	b.WriteString("process (FRR: bgpd + zebra); CPU is user+system time of the receiver during the run.\n")
	fmt.Fprintf(&b, "%d runs per receiver, alternating; the table shows each receiver's median run (by session up -> all).\n\n", runs)
	b.WriteString(table)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// logBuf collects a helper's log; safe for the copier and the reader.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
