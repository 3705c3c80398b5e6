package testnet

import (
	"fmt"
	"strings"
	"testing"
)

// Causes of drops decided by the packet against one hop.
const (
	CauseTTLExpired = "ttl_expired"
	CauseMTU        = "mtu"
	CauseNeighbour  = "neighbour"
)

// pingOnce is a Trigger: one echo request with extra ping flags, which
// must get no reply.
func pingOnce(ns *NS, dst string, flags ...string) func() error {
	return func() error {
		args := append([]string{"ping", "-n", "-c", "1", "-W", "5"}, flags...)
		out, err := ns.Run(append(args, dst)...)
		if err == nil {
			return fmt.Errorf("ping %s %s from %s got a reply; expected it dropped:\n%s", strings.Join(flags, " "), dst, ns.short, out)
		}
		return nil
	}
}

// TTLExpired: the client pings the server with TTL 1; the router may not
// forward it and answers time exceeded.
func TTLExpired(tb testing.TB) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "rt-in", false)
	control(tb, c, serverIP)
	return &Scenario{
		Name: "TTLExpired", Net: n, Client: c, Router: r, Server: s,
		Trigger: pingOnce(c, serverIP, "-t", "1"),
		Expect: Expect{
			Drop: true, Reason: "IP_INHDR", Location: "ip_forward", Cause: CauseTTLExpired,
			Netns: r.Name(), Iface: "rt-in",
			Src: clientIP, Dst: serverIP, Proto: "icmp",
			Facts: map[string]string{"ttl": "1", "ttl_expired_at": "netns " + r.Name() + " dev rt-in"},
		},
	}
}

// linkMTU is the MTU of FragNeeded's router—server link.
const linkMTU = "1280"

// FragNeeded: the router—server link has MTU 1280 and the client sends a
// 1428-byte echo request with DF set (ping -M do -s 1400).
func FragNeeded(tb testing.TB) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "rt-in", false)
	r.MustRun("ip", "link", "set", "dev", "rt-out", "mtu", linkMTU)
	s.MustRun("ip", "link", "set", "dev", "sv0", "mtu", linkMTU)
	control(tb, c, serverIP)
	return &Scenario{
		Name: "FragNeeded", Net: n, Client: c, Router: r, Server: s,
		Trigger: pingOnce(c, serverIP, "-M", "do", "-s", "1400"),
		Expect: Expect{
			Drop: true, Reason: "PKT_TOO_BIG", Location: "ip_forward", Cause: CauseMTU,
			Netns: r.Name(), Iface: "rt-in",
			Src: clientIP, Dst: serverIP, Proto: "icmp",
			Facts: map[string]string{"mtu": linkMTU, "egress_dev": "rt-out", "packet_len": "1428"},
		},
	}
}

// deadHop is an address on the router—server link that nobody has.
const deadHop = "10.231.2.99"

// NeighbourFailed: the router's route to the pod CIDR points at a gateway
// on the link that does not exist, so ARP for it fails.
func NeighbourFailed(tb testing.TB) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, "rt-in", false)
	control(tb, c, serverIP)
	r.Route(podCIDR, "via", deadHop)
	return &Scenario{
		Name: "NeighbourFailed", Net: n, Client: c, Router: r, Server: s,
		Trigger: pingOnce(c, podIP),
		Expect: Expect{
			Drop: true, Reason: "NEIGH_FAILED", Cause: CauseNeighbour,
			Netns: r.Name(), Iface: "rt-out",
			Src: clientIP, Dst: podIP, Proto: "icmp",
			Facts: map[string]string{"next_hop": deadHop, "next_hop_dev": "rt-out", "neigh_state": "FAILED"},
		},
	}
}
