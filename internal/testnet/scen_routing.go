package testnet

import "testing"

// ForwardingDisabled is field case 2: the router has lost
// net.ipv4.ip_forward=1, so packets that need forwarding die on its
// ingress device (eth0, as in the Kube-OVN NAT gateway pod).
func ForwardingDisabled(tb testing.TB) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "eth0", false)
	control(tb, c, serverIP)
	// ip_forward=0 also resets conf.all and every device's forwarding;
	// set conf.all explicitly too, as the brief's field note does.
	r.MustSysctl("net.ipv4.ip_forward", "0")
	r.MustSysctl("net.ipv4.conf.all.forwarding", "0")
	return &Scenario{
		Name: "ForwardingDisabled", Net: n, Client: c, Router: r, Server: s,
		Trigger: pingDropped(c, serverIP),
		Expect: Expect{
			Drop: true, Reason: "IP_INADDRERRORS", Location: "ip_error", Cause: CauseForwardingDisabled,
			Netns: r.Name(), Iface: "eth0",
			Sysctl:  "net.ipv4.conf.eth0.forwarding=0",
			Counter: "IpInAddrErrors",
			Src:     clientIP, Dst: serverIP, Proto: "icmp",
		},
	}
}

// NoRoute: the router forwards, the client's default route points at it,
// but the router has no route to the server's pod subnet (and no default
// route), so the packet dies in the router's input routing.
func NoRoute(tb testing.TB) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "rt-in", false)
	s.Addr("lo", podIP+"/32")
	// Prove the pod address is reachable with the route, then take the
	// route away: the drop is then only the missing route.
	r.Route(podCIDR, "via", serverIP)
	control(tb, c, podIP)
	r.MustRun("ip", "route", "del", podCIDR)
	return &Scenario{
		Name: "NoRoute", Net: n, Client: c, Router: r, Server: s,
		Trigger: pingDropped(c, podIP),
		Expect: Expect{
			Drop: true, Reason: "IP_INNOROUTES", Location: "ip_error", Cause: CauseNoRoute,
			Netns: r.Name(), Iface: "rt-in",
			Counter: "IpExtInNoRoutes",
			Src:     clientIP, Dst: podIP, Proto: "icmp",
		},
	}
}
