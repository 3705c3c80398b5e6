package testnet

import (
	"strings"
	"testing"
)

// RPFilterStrict is field case 3 (Calico IPIP, strict rp_filter).
//
// client(cl0) — (ens18)router(ens19) — (ens18)server. The router plays the
// node the LAN routes the pod CIDR to and sends the pod traffic to the
// server node through tunl0; the server's route back to the client leaves
// via ens18, so strict rp_filter on tunl0 drops the packet in
// ip_rcv_finish_core, before FORWARD/INPUT.
//
// With the ipip module the real fallback tunl0 is used, as Calico does
// (route "via <server> dev tunl0 onlink" on the router). Kernels without
// IPIP (like our 6.18 build) get a veth pair named tunl0 instead: the
// asymmetric routing, the device name and the drop are the same.
func RPFilterStrict(tb testing.TB) *Scenario {
	tb.Helper()
	n := New(tb)
	c, r, s := n.NS("client"), n.NS("router"), n.NS("server")
	n.Link(c, "cl0", clientIP+"/24", r, "ens18", routerIn+"/24")
	n.Link(r, "ens19", routerOut+"/24", s, "ens18", serverIP+"/24")
	c.Route("default", "via", routerIn)
	s.Route("10.231.1.0/24", "via", routerOut, "dev", "ens18")
	s.Addr("lo", podIP+"/32")
	r.MustSysctl("net.ipv4.ip_forward", "1")

	var notes []string
	if haveIPIP(s) && haveIPIP(r) {
		s.MustRun("ip", "link", "set", "tunl0", "up")
		r.MustRun("ip", "link", "set", "tunl0", "up")
		r.Route(podCIDR, "via", serverIP, "dev", "tunl0", "onlink")
		notes = append(notes, "tunl0: real IPIP fallback device")
	} else {
		n.Link(r, "tunl0", "10.231.3.1/24", s, "tunl0", "10.231.3.2/24")
		r.Route(podCIDR, "via", "10.231.3.2", "dev", "tunl0")
		notes = append(notes, "tunl0: veth pair (kernel has no IPIP)")
	}
	control(tb, c, podIP)
	// Strict mode on tunl0 only; conf.all stays 0, so the effective value
	// max(all, tunl0) = 1 comes from the device.
	s.MustSysctl("net.ipv4.conf.tunl0.rp_filter", "1")
	return &Scenario{
		Name: "RPFilterStrict", Net: n, Client: c, Router: r, Server: s,
		Trigger: pingDropped(c, podIP),
		Expect: Expect{
			Drop: true, Reason: "IP_RPFILTER", Location: "ip_rcv_finish_core", Cause: CauseRPFilter,
			Netns: s.Name(), Iface: "tunl0",
			Sysctl:  "net.ipv4.conf.tunl0.rp_filter=1",
			Counter: "TcpExtIPReversePathFilter",
			Src:     clientIP, Dst: podIP, Proto: "icmp",
		},
		Notes: notes,
	}
}

// haveIPIP reports whether ns has the ipip fallback device tunl0, which the
// ipip module creates in every namespace. Creating (and deleting) a named
// ipip device first lets the kernel autoload the module where it can.
func haveIPIP(ns *NS) bool {
	if _, err := ns.Run("ip", "link", "show", "tunl0"); err == nil {
		return true
	}
	if _, err := ns.Run("ip", "link", "add", "pdprobe0", "type", "ipip", "remote", "10.231.255.1"); err != nil {
		return false
	}
	_, _ = ns.Run("ip", "link", "del", "pdprobe0")
	out, err := ns.Run("ip", "link", "show", "tunl0")
	return err == nil && strings.Contains(out, "tunl0")
}
