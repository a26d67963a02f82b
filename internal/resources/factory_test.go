package resources_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/resources"
	"github.com/havpn/havpn/internal/vip/viptest"
)

// recStarter is a Starter that records its calls into an opLog.
type recStarter struct {
	name string
	log  *opLog
}

func (s *recStarter) Start(ctx context.Context) error { s.log.add("%s start", s.name); return nil }
func (s *recStarter) Stop(ctx context.Context) error  { s.log.add("%s stop", s.name); return nil }

// seedGroup is the seed's haresources line as config:
// cluster1 116.1.1.1/28 192.168.0.1/24 ipsec gre zebra bgpd, with lab
// addresses, ipsec and zebra as LSB scripts, gre as the (unwired) tunnel and
// bgpd as a registered Starter.
func seedGroup(t *testing.T, zebra string) (*resources.Group, *viptest.Fake, *opLog, string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HAVPN_TEST_DIR", dir)
	for name, target := range map[string]string{"ipsec.sh": "svc.sh", "zebra.sh": zebra} {
		if err := os.Symlink(testdata(t, target), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	sec := config.Duration(2 * time.Second)
	rs := []config.Resource{
		{Name: "wan-vip", Type: config.ResourceVIP, Address: netip.MustParsePrefix("198.51.100.1/28"), Interface: "wan0", Timeout: sec},
		{Name: "lan-vip", Type: config.ResourceVIP, Address: netip.MustParsePrefix("192.168.1.1/24"), Interface: "lan0", Timeout: sec},
		{Name: "ipsec", Type: config.ResourceScript, Path: filepath.Join(dir, "ipsec.sh"), Timeout: sec},
		{Name: "gre", Type: config.ResourceTunnel, Tunnel: "gre0", Timeout: sec},
		{Name: "zebra", Type: config.ResourceScript, Path: filepath.Join(dir, "zebra.sh"), Timeout: sec},
		{Name: "bgpd", Type: config.ResourceBGP, Timeout: sec},
	}
	fk := &viptest.Fake{}
	log := &opLog{}
	build := resources.NewFactory(resources.Deps{
		Log:       discard(),
		Addrs:     fk,
		Announcer: fk,
		GARP:      config.GARP{Count: 1},
		Starters:  map[string]resources.Starter{"bgpd": &recStarter{name: "bgpd", log: log}},
	})
	g, err := resources.NewGroup(rs, build, resources.Options{Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	return g, fk, log, dir
}

func readCalls(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestFactorySeedGroup(t *testing.T) {
	g, fk, log, dir := seedGroup(t, "svc.sh")
	if err := g.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "timeline", `start ok
  start wan-vip ok
  start lan-vip ok
  start ipsec ok
  start gre ok
  start zebra ok
  start bgpd ok`, steps(g.Timeline()))
	diff(t, "states", "wan-vip=running lan-vip=running ipsec=running gre=running zebra=running bgpd=running",
		states(g.Check(t.Context())))
	if err := g.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	diff(t, "states after stop", "wan-vip=stopped lan-vip=stopped ipsec=stopped gre=stopped zebra=stopped bgpd=stopped",
		states(g.Check(t.Context())))
	diff(t, "vip ops", `add 198.51.100.1/28 dev wan0 valid_lft 1 preferred_lft 1
open 198.51.100.1 dev wan0
announce 198.51.100.1 dev wan0
close 198.51.100.1 dev wan0
add 192.168.1.1/24 dev lan0 valid_lft 1 preferred_lft 1
open 192.168.1.1 dev lan0
announce 192.168.1.1 dev lan0
close 192.168.1.1 dev lan0
del 192.168.1.1/24 dev lan0
del 198.51.100.1/28 dev wan0`, fk.Ops())
	diff(t, "script calls", `ipsec start
zebra start
ipsec status
zebra status
zebra stop
ipsec stop
ipsec status
zebra status
`, readCalls(t, dir))
	diff(t, "starter calls", "bgpd start\nbgpd stop", log.String())
	if _, ok := g.Resource("wan-vip").(*resources.VIP); !ok {
		t.Errorf("wan-vip is %T, want *resources.VIP", g.Resource("wan-vip"))
	}
}

func TestFactorySeedGroupRollback(t *testing.T) {
	t.Setenv("HAVPN_TEST_EXIT", "1")
	g, fk, log, dir := seedGroup(t, "exitcode.sh") // zebra fails every action
	err := g.Start(t.Context())
	se, ok := errors.AsType[*resources.StepError](err)
	if !ok || se.Resource != "zebra" {
		t.Fatalf("Start error = %v, want a StepError for zebra", err)
	}
	// zebra's rollback stop fails too (exit 1): reported, and the rest of
	// the rollback goes on.
	if !strings.Contains(err.Error(), "rolling back resource zebra") {
		t.Errorf("Start error %q does not report the failed rollback of zebra", err)
	}
	diff(t, "timeline", `start failed
  start wan-vip ok
  start lan-vip ok
  start ipsec ok
  start gre ok
  start zebra failed
  rollback bgpd ok
  rollback zebra failed
  rollback gre ok
  rollback ipsec ok
  rollback lan-vip ok
  rollback wan-vip ok`, steps(g.Timeline()))
	for _, p := range []string{"198.51.100.1/28", "192.168.1.1/24"} {
		iface := map[string]string{"198.51.100.1/28": "wan0", "192.168.1.1/24": "lan0"}[p]
		if ok, _ := fk.HasAddr(iface, netip.MustParsePrefix(p)); ok {
			t.Errorf("VIP %s still present after rollback", p)
		}
	}
	diff(t, "script calls", "ipsec start\nipsec stop\n", readCalls(t, dir))
	diff(t, "starter calls", "bgpd stop", log.String())
	if st := g.Snapshot()[4].State; st != resources.StateFailed {
		t.Errorf("zebra = %s, want failed", st)
	}
}

func TestFactoryUnknownType(t *testing.T) {
	build := resources.NewFactory(resources.Deps{Log: discard()})
	_, err := build(config.Resource{Name: "x", Type: "frobnicator"})
	if !errors.Is(err, resources.ErrUnknownType) {
		t.Fatalf("err = %v, want ErrUnknownType", err)
	}
}
