package resources_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/resources"
	"github.com/prometheus/client_golang/prometheus"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// opLog records the calls of fake resources, one line each.
type opLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *opLog) add(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, a...))
}

func (l *opLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *opLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = nil
}

// fake is a Resource whose behaviour each test sets.
type fake struct {
	name string
	log  *opLog

	mu sync.Mutex
	// startErr fails Start.
	startErr error
	// delay is how long Start takes; with ignoreCtx it does not notice ctx.
	delay     time.Duration
	ignoreCtx bool
	// running is the state Status reports.
	running bool
}

func (f *fake) Name() string { return f.name }

func (f *fake) Start(ctx context.Context) error {
	f.mu.Lock()
	err, delay, ignore := f.startErr, f.delay, f.ignoreCtx
	f.mu.Unlock()
	if delay > 0 {
		if ignore {
			time.Sleep(delay)
		} else {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				f.log.add("start %s: %v", f.name, ctx.Err())
				return ctx.Err()
			}
		}
	}
	if err != nil {
		f.log.add("start %s: %v", f.name, err)
		return err
	}
	f.log.add("start %s", f.name)
	f.set(true)
	return nil
}

func (f *fake) Stop(ctx context.Context) error {
	f.log.add("stop %s", f.name)
	f.set(false)
	return nil
}

func (f *fake) Status(ctx context.Context) (resources.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running {
		return resources.StateRunning, nil
	}
	return resources.StateStopped, nil
}

func (f *fake) set(running bool) {
	f.mu.Lock()
	f.running = running
	f.mu.Unlock()
}

func (f *fake) configure(fn func(*fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// group builds a Group of fakes named names, each with timeout.
func group(t *testing.T, timeout time.Duration, names ...string) (*resources.Group, map[string]*fake, *opLog, *prometheus.Registry) {
	t.Helper()
	log := &opLog{}
	fakes := map[string]*fake{}
	var rs []config.Resource
	for _, n := range names {
		fakes[n] = &fake{name: n, log: log}
		rs = append(rs, config.Resource{Name: n, Type: config.ResourceScript, Timeout: config.Duration(timeout)})
	}
	reg := prometheus.NewRegistry()
	g, err := resources.NewGroup(rs, func(r config.Resource) (resources.Resource, error) {
		return fakes[r.Name], nil
	}, resources.Options{Log: discard(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.WaitIdle(ctx); err != nil {
			t.Error(err)
		}
	})
	return g, fakes, log, reg
}

// steps renders a timeline as "op resource result" lines.
func steps(tl resources.Timeline) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", tl.Op, tl.Result)
	for _, s := range tl.Steps {
		fmt.Fprintf(&b, "\n  %s %s %s", s.Op, s.Resource, s.Result)
	}
	return b.String()
}

func states(st []resources.Status) string {
	var parts []string
	for _, s := range st {
		parts = append(parts, s.Name+"="+s.State.String())
	}
	return strings.Join(parts, " ")
}

func diff(t *testing.T, what, want, got string) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

func TestStartInOrderStopInReverse(t *testing.T) {
	g, _, log, _ := group(t, time.Second, "wan-vip", "lan-vip", "ipsec", "bgp")
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "calls", "start wan-vip\nstart lan-vip\nstart ipsec\nstart bgp", log.String())
	diff(t, "start timeline", `start ok
  start wan-vip ok
  start lan-vip ok
  start ipsec ok
  start bgp ok`, steps(g.Timeline()))
	diff(t, "states", "wan-vip=running lan-vip=running ipsec=running bgp=running", states(g.Snapshot()))

	log.reset()
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "calls", "stop bgp\nstop ipsec\nstop lan-vip\nstop wan-vip", log.String())
	diff(t, "states", "wan-vip=stopped lan-vip=stopped ipsec=stopped bgp=stopped", states(g.Snapshot()))
}

func TestStartFailureRollsBack(t *testing.T) {
	boom := errors.New("boom")
	g, fakes, log, _ := group(t, time.Second, "a", "b", "c")
	fakes["b"].configure(func(f *fake) { f.startErr = boom })
	err := g.Start(t.Context())
	if !errors.Is(err, boom) {
		t.Fatalf("Start error = %v, want boom", err)
	}
	se, ok := errors.AsType[*resources.StepError](err)
	if !ok || se.Resource != "b" || se.Op != resources.OpStart {
		t.Fatalf("Start error = %#v, want a StepError for starting b", err)
	}
	// c never started; b (half started) and a are stopped, in reverse.
	diff(t, "calls", "start a\nstart b: boom\nstop c\nstop b\nstop a", log.String())
	diff(t, "timeline", `start failed
  start a ok
  start b failed
  rollback c ok
  rollback b ok
  rollback a ok`, steps(g.Timeline()))
	diff(t, "states", "a=stopped b=stopped c=stopped", states(g.Snapshot()))
}

func TestStepDeadline(t *testing.T) {
	tests := []struct {
		name      string
		ignoreCtx bool
	}{
		{name: "resource honours ctx"},
		{name: "resource ignores ctx and is abandoned", ignoreCtx: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const timeout = 50 * time.Millisecond
			g, fakes, _, _ := group(t, timeout, "a", "slow")
			fakes["slow"].configure(func(f *fake) { f.delay, f.ignoreCtx = 600*time.Millisecond, tc.ignoreCtx })
			start := time.Now()
			err := g.Start(t.Context())
			took := time.Since(start)
			if !errors.Is(err, resources.ErrDeadline) {
				t.Fatalf("Start error = %v, want ErrDeadline", err)
			}
			if tc.ignoreCtx && !errors.Is(err, resources.ErrAbandoned) {
				t.Errorf("Start error = %v, want ErrAbandoned too", err)
			}
			// Deadline + abandon grace + rollback of two fakes; far below 600 ms.
			if took > 400*time.Millisecond {
				t.Errorf("Start took %s with a %s deadline", took, timeout)
			}
			tl := g.Timeline()
			diff(t, "timeline", `start failed
  start a ok
  start slow timeout
  rollback slow ok
  rollback a ok`, steps(tl))
			if d := tl.Steps[1].Duration; d < timeout || d > timeout+200*time.Millisecond {
				t.Errorf("timed-out step lasted %s, want about %s", d, timeout)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if err := g.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIdempotent(t *testing.T) {
	g, _, log, _ := group(t, time.Second, "a", "b")
	// A fresh group knows nothing: its first Stop stops everything.
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "first stop", "stop b\nstop a", log.String())
	log.reset()
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "second stop", "", log.String())
	for range 2 {
		if err := g.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	diff(t, "two starts", "start a\nstart b", log.String())
	diff(t, "second start timeline", "start ok\n  start a skipped\n  start b skipped", steps(g.Timeline()))
}

func TestStopCancelsStart(t *testing.T) {
	g, fakes, log, _ := group(t, 5*time.Second, "a", "slow", "c")
	fakes["slow"].configure(func(f *fake) { f.delay = 5 * time.Second })
	startErr := make(chan error, 1)
	go func() { startErr <- g.Start(context.Background()) }()
	deadline := time.Now().Add(2 * time.Second)
	for g.Snapshot()[1].State != resources.StateStarting {
		if time.Now().After(deadline) {
			t.Fatal("slow never started")
		}
		time.Sleep(time.Millisecond)
	}
	begin := time.Now()
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Stop took %s: it did not cancel the Start", took)
	}
	if err := <-startErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Start error = %v, want context.Canceled", err)
	}
	diff(t, "calls", "start a\nstart slow: context canceled\nstop c\nstop slow\nstop a", log.String())
	diff(t, "states", "a=stopped slow=stopped c=stopped", states(g.Snapshot()))
}

func TestCheckDetectsDeadResource(t *testing.T) {
	g, fakes, log, reg := group(t, time.Second, "a", "b")
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	fakes["b"].set(false) // b died behind our back
	st := g.Check(t.Context())
	if st[1].State != resources.StateFailed || st[1].Error == "" {
		t.Fatalf("b after Check = %+v, want failed with a reason", st[1])
	}
	if got := gaugeValue(t, reg, "havpn_resource_state", "b"); got != float64(resources.StateFailed) {
		t.Errorf("havpn_resource_state{name=b} = %v, want %d", got, resources.StateFailed)
	}
	// Start again restarts only what is not running.
	log.reset()
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "calls", "start b", log.String())
}

func TestTimelineJSON(t *testing.T) {
	g, _, _, reg := group(t, time.Second, "a")
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct {
		Timeline  resources.Timeline
		Resources []resources.Status
	}{g.Timeline(), g.Snapshot()})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"op":"start"`, `"result":"ok"`, `"resource":"a"`, `"state":"running"`, `"duration_ns":`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	if n := histogramCount(t, reg, "havpn_resource_step_seconds", "a", "start"); n != 1 {
		t.Errorf("step_seconds{a,start} count = %d, want 1", n)
	}
}

func TestNewGroupErrors(t *testing.T) {
	build := func(r config.Resource) (resources.Resource, error) {
		if r.Name == "bad" {
			return nil, resources.ErrUnknownType
		}
		return &fake{name: r.Name, log: &opLog{}}, nil
	}
	tests := []struct {
		name string
		rs   []config.Resource
		want string
	}{
		{name: "duplicate", rs: []config.Resource{{Name: "a"}, {Name: "a"}}, want: `duplicate name "a"`},
		{name: "build fails", rs: []config.Resource{{Name: "a"}, {Name: "bad"}}, want: "resources[1] bad: unknown resource type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resources.NewGroup(tc.rs, build, resources.Options{Log: discard()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewGroup error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, family, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == name {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{name=%q}", family, name)
	return 0
}

func histogramCount(t *testing.T, g prometheus.Gatherer, family, name, op string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["name"] == name && labels["op"] == op {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	t.Fatalf("no %s{name=%q,op=%q}", family, name, op)
	return 0
}
