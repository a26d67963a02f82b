//go:build linux

package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// pollable is a link whose file descriptor the heartbeat loop polls and
// reads itself (UDP and serial links), so that a heartbeat or a tick never
// waits for another thread: the loop's thread sleeps in ppoll(2) and the
// kernel wakes it directly, ahead of every other thread when it runs
// SCHED_FIFO. Go timers and the netpoller, by contrast, are serviced by
// ordinary threads that a loaded machine may not schedule for tens of
// milliseconds.
type pollable interface {
	Link
	fd() int
	// recvNonblock returns the next message (ok) or ok=false when none is
	// waiting.
	recvNonblock(b []byte) (n int, from netip.Addr, ok bool, err error)
}

// pollSlice bounds one ppoll sleep; see pollLoop.
const pollSlice = 5 * time.Millisecond

// canPoll reports whether Run can use pollLoop: real time and links that
// all expose their descriptor.
func (c *Cluster) canPoll(links []Link) bool {
	if _, ok := c.clock.(RealClock); !ok {
		return false
	}
	for _, l := range links {
		if _, ok := l.(pollable); !ok {
			return false
		}
	}
	return len(links) > 0
}

// pollLoop is the heartbeat loop for pollable links: one thread, ppoll on
// every link and an eventfd (kicks from the API, ctx cancel), ticks by the
// ppoll timeout. Everything received is processed before a due tick.
func (c *Cluster) pollLoop(ctx context.Context, links []Link) error {
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("heartbeat loop eventfd: %w", err)
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	c.wakeMu.Lock()
	c.wake = func() { unix.Write(efd, one) }
	c.wakeMu.Unlock()
	defer func() {
		c.wakeMu.Lock()
		c.wake = nil
		unix.Close(efd)
		c.wakeMu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { c.poke() })
	defer stop()

	s := c.startLoop(links)
	defer func() { closeLinks(s.links) }()
	ps := make([]pollable, len(links))
	fds := make([]unix.PollFd, len(links)+1)
	fds[0] = unix.PollFd{Fd: int32(efd), Events: unix.POLLIN}
	// A link whose descriptor reports an error or hang-up without data
	// (a serial line whose other end went away) is left out of the poll
	// set for a second, so that the loop never spins on it.
	muted := make([]time.Time, len(ps))
	gen := -1
	var scratch [8]byte
	var ts unix.Timespec
	for {
		if ctx.Err() != nil {
			c.goodbye(s)
			return nil
		}
		if gen != s.gen { // a link was reopened or lost
			gen = s.gen
			for i, l := range s.links {
				ps[i] = l.(pollable)
				fds[i+1] = unix.PollFd{Fd: int32(ps[i].fd()), Events: unix.POLLIN}
				muted[i] = time.Time{}
			}
		}
		now := c.clock.Now()
		// Sleep at most pollSlice: the Go runtime leaves a P with a
		// thread in a system call shorter than 10 ms alone (sysmon), so
		// the loop gets its P straight back on wake-up instead of queueing
		// for the scheduler lock behind ordinary threads.
		wait := min(max(s.next.Sub(now), 0), pollSlice)
		for i, p := range ps {
			if !muted[i].IsZero() {
				if now.Before(muted[i]) {
					wait = min(wait, muted[i].Sub(now))
				} else {
					muted[i] = time.Time{}
					fds[i+1].Fd = int32(p.fd())
				}
			}
		}
		ts = unix.NsecToTimespec(int64(wait))
		for i := range fds {
			fds[i].Revents = 0
		}
		if _, err := unix.Ppoll(fds, &ts, nil); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("heartbeat loop ppoll: %w", err)
		}
		kicked := fds[0].Revents != 0
		if kicked {
			unix.Read(efd, scratch[:])
			if c.drainReqs(c.clock.Now()) {
				kicked = true
			}
		}
		got := false
		for i, p := range ps {
			ev := fds[i+1].Revents
			if ev == 0 {
				continue
			}
			ok := c.readLink(s, i, p)
			got = got || ok
			if !ok && ev&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
				muted[i] = c.clock.Now().Add(time.Second)
				fds[i+1].Fd = -1
			}
		}
		if now := c.clock.Now(); !now.Before(s.next) {
			c.tick(s, now)
		} else if kicked || got {
			c.sendIfChanged(s, now)
		}
	}
}

// readLink processes every message waiting on link i; it reports whether
// one was accepted.
func (c *Cluster) readLink(s *sender, i int, p pollable) bool {
	got := false
	for range 256 { // bounded: a flood must not starve the ticks
		n, from, ok, err := p.recvNonblock(s.rxBuf)
		if err != nil {
			e := "receive: " + err.Error()
			c.links[i].lastErr.Store(&e)
			return got
		}
		if !ok {
			return got
		}
		at := c.clock.Now()
		var msg Message
		if !c.decode(s.rxCodec, i, s.rxBuf[:n], from, &msg) {
			continue
		}
		d, outs := c.m.Receive(at, i, &msg)
		if d != DropNone {
			c.drop(d)
		}
		c.handle(outs)
		got = true
	}
	return got
}

// isGone reports a send error meaning the link's device no longer exists.
func isGone(err error) bool { return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) }

// currentNetns opens the network namespace of the calling thread (-1 if
// it cannot), for the reopener.
func currentNetns() int {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// reopenLoop retries, every second, the links that are not open. It runs
// on its own locked thread moved into the network namespace Run was called
// in (nsfd), so that sockets are made where the first ones were; the
// thread is never unlocked and dies with the goroutine. New links are
// handed to the heartbeat loop through exec.
func (c *Cluster) reopenLoop(ctx context.Context, nsfd int) {
	if nsfd >= 0 {
		defer unix.Close(nsfd)
	}
	runtime.LockOSThread()
	if nsfd >= 0 {
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			c.log.Error("link reopener cannot enter the network namespace; links that fail stay closed", "err", err)
			return
		}
	}
	for sleepCtx(ctx, c.clock, time.Second) {
		var want []int
		c.exec(func(_ time.Time, running bool) {
			if !running {
				return
			}
			for i, l := range c.s.links {
				if _, dead := l.(*deadLink); dead {
					want = append(want, i)
				}
			}
		})
		for _, i := range want {
			lk, err := openLink(c.cl.Links[i], c.cl.Port, c.key)
			if err != nil {
				c.links[i].setError(err)
				continue
			}
			if d, ok := lk.(dropReporter); ok {
				d.setDropFunc(c.drop)
			}
			c.exec(func(_ time.Time, running bool) {
				if !running {
					lk.Close()
					return
				}
				c.s.links[i].Close()
				c.s.links[i] = lk
				c.s.gen++
				c.note.write(slog.LevelInfo, "heartbeat link open", "link", c.cl.Links[i].Name)
			})
		}
	}
}
