package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/havpn/havpn/internal/config"
	"github.com/havpn/havpn/internal/fib"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Kernel route protocol numbers (linux/rtnetlink.h) by redistribute source.
const (
	protoUnspec = 0
	protoKernel = 2
	protoBoot   = 3
	protoStatic = 4
	protoRA     = 9
	protoDHCP   = 16
	mainTable   = 254
)

// sourceProtos returns the kernel protocols a redistribute source reads:
// connected = routes the kernel made for addresses (proto kernel, without
// a gateway); static = proto static (what `ip route add ... proto static`
// and most static-route tools write); kernel = the routes other programs
// or an admin added (proto boot: `ip route add` without proto; ra; dhcp;
// unspec).
func sourceProtos(s config.RedistSource) []uint8 {
	switch s {
	case config.RedistConnected:
		return []uint8{protoKernel}
	case config.RedistStatic:
		return []uint8{protoStatic}
	case config.RedistKernel:
		return []uint8{protoBoot, protoRA, protoDHCP, protoUnspec}
	}
	return nil
}

// candidate is a kernel route offered for redistribution.
type candidate struct {
	route  fib.Route
	source config.RedistSource
}

// selectRedistributed returns the prefixes to announce out of routes:
// those of each configured source, through its prefix list, minus the
// networks (announced anyway), our own protocol's routes, link-local and
// multicast prefixes, and, unless a permit rule names exactly that prefix,
// default routes and host routes of addresses on the box or of connected
// routes (VIPs, tunnel peers: never by accident).
func selectRedistributed(cfg *config.BGP, lists map[string]prefixList, routes []candidate, addrs []netip.Prefix) []netip.Prefix {
	filter := make(map[config.RedistSource]*prefixList, len(cfg.Redistribute))
	for _, r := range cfg.Redistribute {
		var pl *prefixList
		if r.PrefixList != "" {
			l := lists[r.PrefixList]
			pl = &l
		}
		filter[r.Source] = pl
	}
	onBox := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		onBox[a.Addr().Unmap()] = true
	}
	connectedHost := make(map[netip.Prefix]bool)
	for _, c := range routes {
		if c.source == config.RedistConnected && c.route.Prefix.IsSingleIP() {
			connectedHost[c.route.Prefix] = true
		}
	}
	networks := make(map[netip.Prefix]bool, len(cfg.Networks))
	for _, n := range cfg.Networks {
		networks[n.Masked()] = true
	}
	seen := make(map[netip.Prefix]bool)
	var out []netip.Prefix
	for _, c := range routes {
		pl, ok := filter[c.source]
		if !ok {
			continue
		}
		p := c.route.Prefix.Masked()
		if seen[p] || networks[p] || c.route.Protocol == cfg.FIB.Protocol {
			continue
		}
		if c.source == config.RedistConnected && len(c.route.NextHops) > 0 {
			continue // proto kernel with a gateway: not an interface route
		}
		a := p.Addr()
		if a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsLoopback() {
			continue
		}
		special := p.Bits() == 0 || (p.IsSingleIP() && (onBox[a] || connectedHost[p]))
		switch {
		case special && (pl == nil || !pl.permitsExactly(p)):
			continue
		case pl != nil && !pl.permits(p):
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// redistributor keeps the announced redistributed routes equal to the
// selected kernel routes. sync and run are called from one goroutine at a
// time (Start, then the run goroutine).
type redistributor struct {
	cfg       *config.BGP
	lists     map[string]prefixList
	src       RouteSource
	log       *slog.Logger
	announced map[netip.Prefix]bool
}

func newRedistributor(cfg *config.BGP, lists map[string]prefixList, src RouteSource, log *slog.Logger) *redistributor {
	return &redistributor{cfg: cfg, lists: lists, src: src, log: log, announced: make(map[netip.Prefix]bool)}
}

// read returns the candidates of every configured source and the
// addresses on the box.
func (r *redistributor) read() ([]candidate, []netip.Prefix, error) {
	var cands []candidate
	for _, rd := range r.cfg.Redistribute {
		for _, proto := range sourceProtos(rd.Source) {
			rs, err := r.src.Routes(mainTable, proto)
			if err != nil {
				return nil, nil, fmt.Errorf("reading %s routes: %w", rd.Source, err)
			}
			for _, rt := range rs {
				cands = append(cands, candidate{route: rt, source: rd.Source})
			}
		}
	}
	addrs, err := r.src.Addrs()
	if err != nil {
		return nil, nil, fmt.Errorf("reading addresses: %w", err)
	}
	return cands, addrs, nil
}

// sync reads the kernel and announces/withdraws the difference.
func (r *redistributor) sync(srv *server.BgpServer) error {
	cands, addrs, err := r.read()
	if err != nil {
		return err
	}
	want := selectRedistributed(r.cfg, r.lists, cands, addrs)
	wantSet := make(map[netip.Prefix]bool, len(want))
	var add, del []netip.Prefix
	for _, p := range want {
		wantSet[p] = true
		if !r.announced[p] {
			add = append(add, p)
		}
	}
	for p := range r.announced {
		if !wantSet[p] {
			del = append(del, p)
		}
	}
	var errs []error
	if err := announce(srv, add); err != nil {
		errs = append(errs, fmt.Errorf("announcing %d redistributed routes: %w", len(add), err))
	} else {
		for _, p := range add {
			r.announced[p] = true
		}
	}
	if err := withdraw(srv, del); err != nil {
		errs = append(errs, fmt.Errorf("withdrawing %d redistributed routes: %w", len(del), err))
	} else {
		for _, p := range del {
			delete(r.announced, p)
		}
	}
	if len(add)+len(del) > 0 {
		r.log.Info("redistribution changed", "announced", len(add), "withdrawn", len(del), "total", len(r.announced))
	}
	return errors.Join(errs...)
}

// run follows kernel changes (debounced) until ctx is done.
func (r *redistributor) run(ctx context.Context, srv *server.BgpServer, debounce time.Duration) {
	ev := make(chan struct{}, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	werr := make(chan error, 1)
	go func() {
		werr <- r.src.WatchRoutes(wctx, r.cfg.FIB.Protocol, func() {
			select {
			case ev <- struct{}{}:
			default:
			}
		})
	}()
	t := time.NewTimer(time.Hour)
	t.Stop()
	// Also look again now and then: a lost event must not leave the
	// announcements wrong for ever.
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if werr != nil {
				<-werr
			}
			return
		case err := <-werr:
			if err != nil {
				r.log.Warn("watching kernel routes; redistribution now only every minute", "err", err)
			}
			werr = nil
		case <-ev:
			t.Reset(debounce)
		case <-t.C:
			if err := r.sync(srv); err != nil {
				r.log.Warn("redistributing kernel routes", "err", err)
			}
		case <-tick.C:
			if err := r.sync(srv); err != nil {
				r.log.Warn("redistributing kernel routes", "err", err)
			}
		}
	}
}
