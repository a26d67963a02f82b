package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/havpn/havpn/internal/ctl"
	"github.com/havpn/havpn/internal/netnsutil"
)

// startProc starts a detached process in a node's namespace, its output
// appended to logPath. The process outlives the caller (`lab up` exits).
func startProc(ns, logPath string, argv ...string) (int, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := netnsutil.Start(ns, cmd); err != nil {
		return 0, fmt.Errorf("starting %s in %s: %w", argv[0], ns, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while we still run; otherwise init does.
	go cmd.Wait()
	return pid, nil
}

func startEcho(st *State, node string) error {
	ns := st.Nodes[node]
	pid, err := startProc(ns.NS, filepath.Join(Dir(st.Prefix), node+"-echo.log"),
		st.Bin, "lab", "echo", "--port", strconv.Itoa(DefaultEchoPort))
	if err != nil {
		return err
	}
	ns.EchoPID = pid
	return st.save()
}

func startDaemon(st *State, node string) error {
	ns := st.Nodes[node]
	if ns.Config == "" {
		cfg, err := writeDaemonConfig(st, node)
		if err != nil {
			return err
		}
		ns.Config = cfg
		ns.Socket = socketPath(st.Prefix, node)
		ns.Log = filepath.Join(Dir(st.Prefix), node+".log")
	}
	pid, err := startProc(ns.NS, ns.Log, st.Bin, "run", "-c", ns.Config)
	if err != nil {
		return err
	}
	ns.DaemonPID = pid
	return st.save()
}

// socketPath is a gateway daemon's control socket in the lab.
func socketPath(prefix, node string) string { return filepath.Join(Dir(prefix), node+".sock") }

// waitDaemons waits until every gateway's daemon answers status.
func waitDaemons(ctx context.Context, st *State, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for _, gw := range Gateways() {
		if err := waitDaemon(ctx, st, gw); err != nil {
			return err
		}
	}
	return nil
}

func waitDaemon(ctx context.Context, st *State, node string) error {
	ns := st.Nodes[node]
	for {
		if !alive(ns.DaemonPID) {
			return fmt.Errorf("%s: daemon (pid %d) exited; see %s", node, ns.DaemonPID, ns.Log)
		}
		var v map[string]any
		if err := ctl.Call(ctx, ns.Socket, ctl.CmdStatus, nil, &v); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: daemon not answering on %s: %w; see %s", node, ns.Socket, ctx.Err(), ns.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil && !isZombie(pid)
}

// ErrNoDaemon means the node has no daemon to act on.
var ErrNoDaemon = errors.New("no daemon runs there")

// signalDaemon sends sig to a node's daemon.
func (l *Lab) signalDaemon(node string, sig syscall.Signal) error {
	ns, err := l.gateway(node)
	if err != nil {
		return err
	}
	if !alive(ns.DaemonPID) {
		return fmt.Errorf("%s: %w", node, ErrNoDaemon)
	}
	if err := syscall.Kill(ns.DaemonPID, sig); err != nil {
		return fmt.Errorf("%s: signalling daemon %d: %w", node, ns.DaemonPID, err)
	}
	return nil
}

// Kill SIGKILLs a node's daemon: a crash on a machine that stays up.
func (l *Lab) Kill(node string) error {
	if err := l.signalDaemon(node, syscall.SIGKILL); err != nil {
		return err
	}
	return waitGone(l.st.Nodes[node].DaemonPID)
}

// Freeze SIGSTOPs a node's daemon; Thaw SIGCONTs it.
func (l *Lab) Freeze(node string) error { return l.signalDaemon(node, syscall.SIGSTOP) }

// Thaw resumes a frozen daemon.
func (l *Lab) Thaw(node string) error { return l.signalDaemon(node, syscall.SIGCONT) }

// Restart stops a node's daemon (SIGTERM, SIGKILL after 5 s) if it runs and
// starts it again, waiting until it answers. A powered-off node or a lab
// without daemons is an error.
func (l *Lab) Restart(ctx context.Context, node string) error {
	ns, err := l.gateway(node)
	if err != nil {
		return err
	}
	if !l.st.Daemons {
		return fmt.Errorf("%s: %w (the lab is up with --no-daemons)", node, ErrNoDaemon)
	}
	if ns.PoweredOff {
		return fmt.Errorf("%s is powered off (havpn lab poweron %s)", node, node)
	}
	if alive(ns.DaemonPID) {
		syscall.Kill(ns.DaemonPID, syscall.SIGCONT)
		syscall.Kill(ns.DaemonPID, syscall.SIGTERM)
		if waitGoneFor(ns.DaemonPID, 5*time.Second) != nil {
			syscall.Kill(ns.DaemonPID, syscall.SIGKILL)
			if err := waitGone(ns.DaemonPID); err != nil {
				return err
			}
		}
	}
	if err := startDaemon(l.st, node); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return waitDaemon(ctx, l.st, node)
}

func waitGone(pid int) error { return waitGoneFor(pid, 5*time.Second) }

func waitGoneFor(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d still running after %v", pid, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// waitEcho waits until the echo responder in ns answers on loopback.
func waitEcho(ctx context.Context, ns string) error {
	r, err := ProbeNS(ctx, ns, ProbeOptions{
		To: netip.MustParseAddr("127.0.0.1"), Interval: 10 * time.Millisecond,
		Duration: 3 * time.Second, StopOnReply: true,
	})
	if err != nil {
		return err
	}
	if r.Received == 0 {
		return errors.New("no answer within 3s")
	}
	return nil
}
