package testnet

import (
	"fmt"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// Addresses of the client — router — server line. They are reused by
// every scenario: each scenario has its own namespaces, so they never meet.
const (
	clientIP  = "10.231.1.2"
	routerIn  = "10.231.1.1"
	routerOut = "10.231.2.1"
	serverIP  = "10.231.2.2"
	podIP     = "10.232.0.10" // the "pod" address, in the pod CIDR
	podCIDR   = "10.232.0.0/24"

	clientIP6  = "fd00:231:1::2"
	routerIn6  = "fd00:231:1::1"
	routerOut6 = "fd00:231:2::1"
	serverIP6  = "fd00:231:2::2"
)

// line builds client(cl0) — (inIf)router(rt-out) — (sv0)server with
// default routes via the router and forwarding on in the router, for IPv4
// or IPv6. Callers then break one thing.
func line(tb testing.TB, inIf string, v6 bool) (*Net, *NS, *NS, *NS) {
	tb.Helper()
	n := New(tb)
	c, r, s := n.NS("client"), n.NS("router"), n.NS("server")
	if v6 {
		n.Link(c, "cl0", clientIP6+"/64", r, inIf, routerIn6+"/64")
		n.Link(r, "rt-out", routerOut6+"/64", s, "sv0", serverIP6+"/64")
		c.Route("default", "via", routerIn6)
		s.Route("default", "via", routerOut6)
		r.MustSysctl("net.ipv6.conf.all.forwarding", "1")
		return n, c, r, s
	}
	n.Link(c, "cl0", clientIP+"/24", r, inIf, routerIn+"/24")
	n.Link(r, "rt-out", routerOut+"/24", s, "sv0", serverIP+"/24")
	c.Route("default", "via", routerIn)
	s.Route("default", "via", routerOut)
	r.MustSysctl("net.ipv4.ip_forward", "1")
	return n, c, r, s
}

// control pings dst once from ns and fails the test if no reply came: it
// proves the topology works before the scenario breaks it, so the drop
// the trigger causes is the one the scenario introduced.
func control(tb testing.TB, ns *NS, dst string) {
	tb.Helper()
	ok, err := ns.Ping(dst, 1, 3*time.Second)
	if err != nil {
		tb.Fatalf("testnet: control ping: %v", err)
	}
	if !ok {
		tb.Fatalf("testnet: control ping from %s to %s got no reply before breaking the topology", ns.short, dst)
	}
}

// pingDropped is a Trigger body: it pings and calls it an error if a reply
// came back, since the scenario promised a drop.
func pingDropped(ns *NS, dst string) func() error {
	return func() error {
		ok, err := ns.Ping(dst, 3, 2*time.Second)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("ping %s from %s got a reply; expected it dropped", dst, ns.short)
		}
		return nil
	}
}

// ipt runs an iptables-family tool in ns for each rule, failing the test.
func ipt(tb testing.TB, ns *NS, tool string, rules ...[]string) {
	tb.Helper()
	privtest.RequireCmd(tb, tool)
	for _, r := range rules {
		ns.MustRun(append([]string{tool, "-w"}, r...)...)
	}
}
