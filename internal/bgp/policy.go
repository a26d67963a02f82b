package bgp

import (
	"fmt"
	"net/netip"

	"github.com/havpn/havpn/internal/config"
	"github.com/osrg/gobgp/v4/api"
)

// prefixList is a config.PrefixList evaluated in Go (redistribution
// filters) and translated into GoBGP policy statements (neighbor import and
// export).
type prefixList struct {
	name  string
	rules []config.PrefixRule
}

func newPrefixLists(pls []config.PrefixList) map[string]prefixList {
	m := make(map[string]prefixList, len(pls))
	for _, pl := range pls {
		m[pl.Name] = prefixList{name: pl.Name, rules: pl.Rules}
	}
	return m
}

// matches reports whether rule r matches route prefix p: p lies inside
// r.Prefix (same family) and its length is within [GE, LE].
func ruleMatches(r config.PrefixRule, p netip.Prefix) bool {
	if r.Prefix.Addr().Is4() != p.Addr().Is4() {
		return false
	}
	if p.Bits() < r.GE || p.Bits() > r.LE || p.Bits() < r.Prefix.Bits() {
		return false
	}
	return r.Prefix.Contains(p.Addr())
}

// permits evaluates the list for p: the first matching rule decides; no
// match is a deny (like FRR's prefix lists).
func (l prefixList) permits(p netip.Prefix) bool {
	for _, r := range l.rules {
		if ruleMatches(r, p) {
			return r.Action == config.Permit
		}
	}
	return false
}

// permitsExactly reports whether the first rule matching p is a permit
// written for exactly p (same prefix, GE = LE = its length). Host and
// default routes are redistributed only when permitted like this.
func (l prefixList) permitsExactly(p netip.Prefix) bool {
	for _, r := range l.rules {
		if ruleMatches(r, p) {
			return r.Action == config.Permit && r.Prefix == p && r.GE == p.Bits() && r.LE == p.Bits()
		}
	}
	return false
}

// Names of the GoBGP policy objects havpn defines.
const (
	importPolicy = "havpn-import"
	exportPolicy = "havpn-export"
)

// policies returns the defined sets and the global import and export
// policies that implement cfg's per-neighbor import/export prefix lists
// and next-hop-self. GoBGP allows per-peer policies only for route-server
// clients, so everything is one global policy per direction whose
// statements are conditioned on a neighbor set of one address:
//
//	export: [nhs-<peer>: set next hop self, continue]...
//	        [<peer>-<list>-<i>: prefix rule i -> accept/reject]... [<peer>-deny: reject]...
//	import: [<peer>-<list>-<i>: ...]... [<peer>-deny: reject]...
//
// Neighbors without a list fall through to the default action, accept.
func policies(cfg *config.BGP) (sets []*api.DefinedSet, imp, exp *api.Policy, err error) {
	lists := newPrefixLists(cfg.PrefixLists)
	imp = &api.Policy{Name: importPolicy}
	exp = &api.Policy{Name: exportPolicy}
	ruleSets := make(map[string]bool) // prefix set names already defined
	for _, n := range cfg.Neighbors {
		nset := "nbr-" + n.Address.String()
		sets = append(sets, &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR,
			Name:        nset,
			List:        []string{netip.PrefixFrom(n.Address, n.Address.BitLen()).String()},
		})
		if n.NextHopSelf {
			exp.Statements = append(exp.Statements, &api.Statement{
				Name:       "nhs-" + n.Address.String(),
				Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset}},
				Actions:    &api.Actions{Nexthop: &api.NexthopAction{Self: true}},
			})
		}
		for _, dir := range []struct {
			list string
			pol  *api.Policy
		}{{n.Import, imp}, {n.Export, exp}} {
			if dir.list == "" {
				continue
			}
			pl, ok := lists[dir.list]
			if !ok {
				return nil, nil, nil, fmt.Errorf("neighbor %s: prefix list %q: %w", n.Address, dir.list, ErrNoPrefixList)
			}
			for i, r := range pl.rules {
				sname := fmt.Sprintf("pl-%s-%d", pl.name, i)
				if !ruleSets[sname] {
					ruleSets[sname] = true
					sets = append(sets, &api.DefinedSet{
						DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX,
						Name:        sname,
						Prefixes: []*api.Prefix{{
							IpPrefix:      r.Prefix.String(),
							MaskLengthMin: uint32(r.GE),
							MaskLengthMax: uint32(r.LE),
						}},
					})
				}
				action := api.RouteAction_ROUTE_ACTION_REJECT
				if r.Action == config.Permit {
					action = api.RouteAction_ROUTE_ACTION_ACCEPT
				}
				dir.pol.Statements = append(dir.pol.Statements, &api.Statement{
					Name: fmt.Sprintf("%s-%s-%s-%d", dir.pol.Name, n.Address, pl.name, i),
					Conditions: &api.Conditions{
						NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
						PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: sname},
					},
					Actions: &api.Actions{RouteAction: action},
				})
			}
			dir.pol.Statements = append(dir.pol.Statements, &api.Statement{
				Name:       fmt.Sprintf("%s-%s-deny", dir.pol.Name, n.Address),
				Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset}},
				Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT},
			})
		}
	}
	return sets, imp, exp, nil
}
