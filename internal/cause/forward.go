package cause

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/report"
)

// LinkReader reads a device's settings (*netns.Resolver).
type LinkReader interface {
	Link(inode uint32, name string) (netns.LinkInfo, error)
}

// NeighbourReader reads the neighbour table (*netns.Resolver).
type NeighbourReader interface {
	Neighbour(inode uint32, dev string, ip net.IP) (netns.Neighbour, error)
}

func isForward(r *report.Report) bool {
	fn, _, _ := strings.Cut(r.Location, "+")
	return fn == "ip_forward" || fn == "ip6_forward"
}

// inHdr: IP_INHDR is both a bad header and, in ip_forward, a TTL that
// ran out.
func inHdr(r *report.Report, sys System) {
	if isForward(r) && r.TTL <= 1 {
		ttlExpired(r)
		return
	}
	fixed("bad_header", "the IP header is invalid", "find what corrupts or rewrites the header on the way")(r, sys)
}

// forwardDrop: without drop reasons (before 5.17) a drop in ip_forward is
// told apart by the packet itself: its TTL, its size against the egress
// MTU.
func forwardDrop(r *report.Report, sys System) {
	if r.TTL <= 1 && r.Family != "" {
		ttlExpired(r)
		return
	}
	if tooBig(r, sys, false) {
		return
	}
	r.Cause = "forward"
	r.Explanation = "dropped while forwarding " + where(r) + " (not for its TTL nor its size: a packet for another host's MAC, an IPsec policy, or GRO/LRO)"
	r.Hint = "check `ip route get " + r.Dst + " from " + r.Src + " iif " + orAny(r.Iface) + "` and the device's offloads"
}

func ttlExpired(r *report.Report) {
	r.Cause = "ttl_expired"
	name, back := "TTL", "ICMP time exceeded (type 11 code 0)"
	if r.Family == "ipv6" {
		name, back = "hop limit", "ICMPv6 time exceeded (type 3 code 0)"
	}
	ttl := strconv.Itoa(int(r.TTL))
	evidence(r, "ttl", ttl)
	evidence(r, "ttl_expired_at", strings.TrimSpace("netns "+r.NetnsName+" dev "+r.Iface))
	hops := routersBefore(r)
	evidence(r, "routers_before", strconv.Itoa(hops))
	evidence(r, "sender_got", back)
	hop := fmt.Sprintf("router %d after the sender on the path seen", hops+1)
	r.Explanation = fmt.Sprintf("the %s ran out: the packet arrived %s (%s) with %s %s, and a router may not forward it with %s 0; "+
		"the sender got %s", name, where(r), hop, name, ttl, name, back)
	r.Hint = "if the sender chose this " + name + " (traceroute, ping -t), nothing is wrong; otherwise look for a routing loop " +
		"(`traceroute " + r.Dst + "`) or raise the sender's " + name
}

// routersBefore counts the namespaces the packet left before the one it
// died in: each forwarded it.
func routersBefore(r *report.Report) int {
	n, ns := 0, ""
	for _, s := range r.Path {
		if s.NetnsName != ns && s.NetnsName != "" && s.Where != "icmp_error" {
			if ns != "" {
				n++
			}
			ns = s.NetnsName
		}
	}
	if n > 0 {
		n-- // the first namespace is the sender's own
	}
	return n
}

func pktTooBig(r *report.Report, sys System) {
	if !tooBig(r, sys, true) {
		fixed("mtu", "the packet is larger than the path MTU and may not be fragmented",
			"lower the MTU of the sender or fix PMTU discovery (ICMP 'fragmentation needed' must not be filtered)")(r, sys)
	}
}

// tooBig names the MTU a forwarded packet exceeded: its egress device
// and MTU (the route's mtu metric when it has one). sure: the kernel said
// PKT_TOO_BIG; else only a packet larger than that MTU counts.
func tooBig(r *report.Report, sys System, sure bool) bool {
	dst := net.ParseIP(r.Dst)
	lr, ok := sys.(LinkReader)
	if dst == nil || !ok {
		return false
	}
	rt, err := sys.RouteGet(r.Netns, dst, netns.RouteOptions{Src: net.ParseIP(r.Src), Iif: r.Iface, Mark: r.Mark})
	if err != nil || rt.Dev == "" {
		rt, err = sys.RouteGet(r.Netns, dst, netns.RouteOptions{})
	}
	if err != nil || rt.Dev == "" {
		return false
	}
	l, err := lr.Link(r.Netns, rt.Dev)
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		evidence(r, "link_error", err.Error())
	}
	if err != nil {
		return false
	}
	mtu, from := l.MTU, "the MTU of "+rt.Dev
	if rt.MTU > 0 && rt.MTU < mtu {
		mtu, from = rt.MTU, "the mtu of the route to "+r.Dst
	}
	if !sure && int(r.Len) <= mtu {
		return false
	}
	r.Cause = "mtu"
	df := "DF set"
	back := fmt.Sprintf("ICMP fragmentation needed (type 3 code 4) with mtu %d", mtu)
	if r.Family == "ipv6" {
		df = "IPv6: routers never fragment"
		back = fmt.Sprintf("ICMPv6 packet too big (type 2) with mtu %d", mtu)
	}
	evidence(r, "packet_len", strconv.Itoa(int(r.Len)))
	evidence(r, "df", df)
	evidence(r, "mtu", strconv.Itoa(mtu))
	evidence(r, "egress_dev", rt.Dev)
	evidence(r, "sender_got", back)
	r.Explanation = fmt.Sprintf("the packet (%d bytes, %s) is larger than %s (%d), its way to %s in netns %s, and may not be fragmented; "+
		"the sender got %s", r.Len, df, from, mtu, r.Dst, r.NetnsName, back)
	r.Hint = fmt.Sprintf("raise the MTU of %s if the link allows it (`ip link set dev %s mtu <n>` in netns %s), or lower the sender's "+
		"MTU or TCP MSS; make sure the ICMP error reaches the sender (PMTU discovery)", rt.Dev, rt.Dev, r.NetnsName)
	return true
}

// neighFailed names the next hop that never answered ARP/NDP, its device
// and the state of its neighbour entry.
func neighFailed(r *report.Report, sys System) {
	r.Cause = "neighbour"
	proto := "ARP"
	ip := "ip"
	if r.Family == "ipv6" {
		proto, ip = "NDP", "ip -6"
	}
	nh, dev := nextHop(r, sys)
	if nh == nil {
		r.Explanation = "neighbour resolution failed: no " + proto + " answer for the next hop " + where(r)
		r.Hint = "check that the next hop (gateway or destination on the link) is up and answers " + proto + " (`" + ip + " neigh` shows FAILED entries)"
		return
	}
	evidence(r, "next_hop", nh.String())
	evidence(r, "next_hop_dev", dev)
	state := "no entry left"
	if nr, ok := sys.(NeighbourReader); ok {
		n, err := nr.Neighbour(r.Netns, dev, nh)
		switch {
		case err == nil:
			state = n.State
		case errors.Is(err, netns.ErrNoNeighbour):
		default:
			state = "unknown"
			evidence(r, "neigh_error", err.Error())
		}
	}
	evidence(r, "neigh_state", state)
	r.Explanation = fmt.Sprintf("no %s answer from the next hop %s on %s in netns %s (neighbour entry: %s), so the packet to %s "+
		"could not be sent", proto, nh, dev, r.NetnsName, state, r.Dst)
	r.Hint = fmt.Sprintf("check that %s is up and on the link of %s (`%s neigh show dev %s` in netns %s), or fix the route's gateway",
		nh, dev, ip, dev, r.NetnsName)
}

// nextHop is the gateway of the route to the destination, or the
// destination itself when it is on the link.
func nextHop(r *report.Report, sys System) (net.IP, string) {
	dst := net.ParseIP(r.Dst)
	if dst == nil {
		return nil, ""
	}
	rt, err := sys.RouteGet(r.Netns, dst, netns.RouteOptions{})
	if err != nil || rt.Dev == "" {
		return nil, ""
	}
	if rt.Gateway != nil {
		return rt.Gateway, rt.Dev
	}
	return dst, rt.Dev
}
