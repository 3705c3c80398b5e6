package testnet

import (
	"fmt"
	"testing"
)

// Causes of drops by route type (the route that matched says so).
const (
	CauseBlackholeRoute   = "blackhole_route"
	CauseUnreachableRoute = "unreachable_route"
	CauseProhibitRoute    = "prohibit_route"
	CauseThrowRoute       = "throw_route"
)

// RouteType: the router forwards, but a route of type typ (blackhole,
// unreachable, prohibit or throw) for the pod CIDR in its main table
// stops the client's ping there. The router's own route to the pod is
// proved first, then replaced by the typed one.
func RouteType(tb testing.TB, typ string) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "rt-in", false)
	s.Addr("lo", podIP+"/32")
	r.Route(podCIDR, "via", serverIP)
	control(tb, c, podIP)
	r.MustRun("ip", "route", "replace", typ, podCIDR)
	return &Scenario{
		Name: "Route " + typ, Net: n, Client: c, Router: r, Server: s,
		Trigger: pingDropped(c, podIP),
		Expect: Expect{
			Drop: true, Location: "ip_error", Cause: typ + "_route",
			Netns: r.Name(), Iface: "rt-in",
			Src: clientIP, Dst: podIP, Proto: "icmp",
			Facts: map[string]string{"route_type": typ, "route_prefix": podCIDR, "route_table": "main"},
		},
	}
}

// PolicyRoute: main has a working route to the pod CIDR, but the rule
// `1000: from <client> lookup 100` sends the client's packets to table
// 100, where an unreachable route answers them.
func PolicyRoute(tb testing.TB) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "rt-in", false)
	s.Addr("lo", podIP+"/32")
	r.Route(podCIDR, "via", serverIP)
	control(tb, c, podIP)
	r.MustRun("ip", "route", "add", "unreachable", podCIDR, "table", "100")
	r.MustRun("ip", "rule", "add", "pref", "1000", "from", clientIP+"/32", "lookup", "100")
	return &Scenario{
		Name: "PolicyRoute", Net: n, Client: c, Router: r, Server: s,
		Trigger: pingDropped(c, podIP),
		Expect: Expect{
			Drop: true, Location: "ip_error", Cause: CauseUnreachableRoute,
			Netns: r.Name(), Iface: "rt-in",
			Src: clientIP, Dst: podIP, Proto: "icmp",
			Facts: map[string]string{"route_type": "unreachable", "route_prefix": podCIDR, "route_table": "100",
				"rule_priority": "1000", "rule_selector": "from " + clientIP + "/32"},
		},
	}
}

// IPv6 pod addresses of the v6 route scenarios.
const (
	podIP6   = "fd00:232::10"
	podCIDR6 = "fd00:232::/64"
)

// NoRoute6 is NoRoute over IPv6: the router has no route to the pod
// prefix; typ "" leaves it so, "blackhole" adds a blackhole route.
func NoRoute6(tb testing.TB, typ string) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "rt-in", true)
	s.Addr("lo", podIP6+"/128")
	r.Route(podCIDR6, "via", serverIP6)
	control(tb, c, podIP6)
	r.MustRun("ip", "-6", "route", "del", podCIDR6)
	e := Expect{
		Drop: true, Cause: CauseNoRoute, Netns: r.Name(), Iface: "rt-in",
		Src: clientIP6, Dst: podIP6, Proto: "icmpv6",
	}
	if typ != "" {
		r.MustRun("ip", "-6", "route", "add", typ, podCIDR6)
		e.Cause = typ + "_route"
		e.Facts = map[string]string{"route_type": typ, "route_prefix": podCIDR6, "route_table": "main"}
	}
	return &Scenario{
		Name: fmt.Sprintf("NoRoute6 %s", typ), Net: n, Client: c, Router: r, Server: s,
		Trigger: pingDropped(c, podIP6),
		Expect:  e,
	}
}

// PolicyRuleAction: no table is consulted at all: the rule
// `900: from all to <pod CIDR> prohibit` answers the lookup itself.
func PolicyRuleAction(tb testing.TB) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "rt-in", false)
	s.Addr("lo", podIP+"/32")
	r.Route(podCIDR, "via", serverIP)
	control(tb, c, podIP)
	r.MustRun("ip", "rule", "add", "pref", "900", "to", podCIDR, "prohibit")
	return &Scenario{
		Name: "PolicyRuleAction", Net: n, Client: c, Router: r, Server: s,
		Trigger: pingDropped(c, podIP),
		Expect: Expect{
			Drop: true, Location: "ip_error", Cause: "prohibit_rule",
			Netns: r.Name(), Iface: "rt-in",
			Src: clientIP, Dst: podIP, Proto: "icmp",
			Facts: map[string]string{"rule_action": "prohibit", "rule_priority": "900", "rule_selector": "from all to " + podCIDR},
		},
	}
}
