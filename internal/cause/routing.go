package cause

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/report"
	"golang.org/x/sys/unix"
)

var rpModes = map[int]string{0: "off", 1: "strict", 2: "loose"}

// sysctlName is the key as `sysctl` spells it: dots in a device name
// become slashes (net.ipv4.conf.flannel/1.rp_filter).
func sysctlName(family, dev, key string) string {
	if dev == "" {
		return "net." + family + "." + key
	}
	return "net." + family + ".conf." + strings.ReplaceAll(dev, ".", "/") + "." + key
}

func readInt(sys System, r *report.Report, family, dev, key string) (int, bool) {
	path := "net/" + family + "/" + key
	if dev != "" {
		path = "net/" + family + "/conf/" + dev + "/" + key
	}
	v, err := sys.Sysctl(r.Netns, path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, false
	}
	evidence(r, sysctlName(family, dev, key), strconv.Itoa(n))
	return n, true
}

// rpState is the effective reverse path filter mode of the ingress device:
// the kernel applies the larger of conf.all and conf.<dev>.
func rpState(r *report.Report, sys System) (mode, all, dev int, ok bool) {
	all, okA := readInt(sys, r, "ipv4", "all", "rp_filter")
	dev, okD := readInt(sys, r, "ipv4", r.Iface, "rp_filter")
	return max(all, dev), all, dev, okA && okD
}

// routeBack is the route the kernel would use to answer the source.
func routeBack(r *report.Report, sys System) (netns.Route, error) {
	ip := net.ParseIP(r.Src)
	if ip == nil {
		return netns.Route{}, fmt.Errorf("no source address")
	}
	rt, err := sys.RouteGet(r.Netns, ip, netns.RouteOptions{})
	if err == nil {
		evidence(r, "route_back", describeRoute(r.Src, rt))
	}
	return rt, err
}

func describeRoute(dst string, rt netns.Route) string {
	s := dst
	if rt.Gateway != nil {
		s += " via " + rt.Gateway.String()
	}
	if rt.Dev != "" {
		s += " dev " + rt.Dev
	}
	return s + " table " + report.TableName(uint32(rt.Table))
}

func rpFilter(r *report.Report, sys System) {
	r.Cause = "rp_filter"
	mode, all, dev, ok := rpState(r, sys)
	var b strings.Builder
	b.WriteString("reverse-path filter dropped it")
	if w := where(r); w != "" {
		b.WriteString(" " + w)
	}
	if ok {
		fmt.Fprintf(&b, ": rp_filter is %s (%d) for %s, the larger of %s=%d and %s=%d", rpModes[mode], mode, r.Iface,
			sysctlName("ipv4", "all", "rp_filter"), all, sysctlName("ipv4", r.Iface, "rp_filter"), dev)
	}
	rt, err := routeBack(r, sys)
	switch {
	case err != nil:
		fmt.Fprintf(&b, "; there is no route back to %s", r.Src)
	case rt.Dev != r.Iface:
		fmt.Fprintf(&b, "; the route back to %s leaves via %s, not %s", r.Src, rt.Dev, r.Iface)
	default:
		fmt.Fprintf(&b, "; the route back to %s uses %s", r.Src, rt.Dev)
	}
	r.Explanation = b.String()
	fix := fmt.Sprintf("sysctl -w %s=2", sysctlName("ipv4", r.Iface, "rp_filter"))
	if ok && all > 0 {
		fix += fmt.Sprintf(" and sysctl -w %s=2 (the larger value applies)", sysctlName("ipv4", "all", "rp_filter"))
	}
	r.Hint = "use loose mode on " + r.Iface + ": " + fix + ", or 0 to disable it; or fix routing so that replies to " +
		r.Src + " leave via " + r.Iface
}

// rcvFinish: before 5.17 an rp_filter drop is only a kfree_skb in
// ip_rcv_finish_core; the settings and the route back tell it apart.
func rcvFinish(r *report.Report, sys System) {
	for _, s := range r.Path {
		if s.Where == "rp_check" {
			rpFilter(r, sys)
			return
		}
	}
	if mode, _, _, ok := rpState(r, sys); ok && mode > 0 {
		if rt, err := routeBack(r, sys); err != nil || (mode == 1 && rt.Dev != r.Iface) {
			rpFilter(r, sys)
			return
		}
	}
	r.Cause = "input_route"
	r.Explanation = "dropped while routing the incoming packet (invalid source, martian or route error) " + where(r)
	r.Hint = "check `ip route get " + r.Dst + " from " + r.Src + " iif " + orAny(r.Iface) + "` in that netns"
}

func family(r *report.Report) string {
	if r.Family == "ipv6" {
		return "ipv6"
	}
	return "ipv4"
}

// forwardingOff reads the forwarding switches that apply to the ingress
// device; it reports whether either is off.
func forwardingOff(r *report.Report, sys System) (off bool, known bool) {
	f := family(r)
	dev, okD := readInt(sys, r, f, r.Iface, "forwarding")
	global := 0
	okG := false
	if f == "ipv4" {
		global, okG = readInt(sys, r, f, "", "ip_forward")
	} else {
		global, okG = readInt(sys, r, f, "all", "forwarding")
	}
	if !okD && !okG {
		return false, false
	}
	return (okD && dev == 0) || (okG && global == 0), true
}

func forwardingDisabled(r *report.Report) {
	r.Cause = "forwarding_disabled"
	f := family(r)
	key := sysctlName(f, "", "ip_forward")
	if f == "ipv6" {
		key = sysctlName(f, "all", "forwarding")
	}
	r.Explanation = fmt.Sprintf("the packet to %s needed forwarding (it is not for this host), but forwarding is disabled for %s "+
		"in netns %s: %s=%s, %s=%s", r.Dst, r.Iface, r.NetnsName, key, r.Evidence[key],
		sysctlName(f, r.Iface, "forwarding"), r.Evidence[sysctlName(f, r.Iface, "forwarding")])
	// The kernel copies the global switch to every device only when its
	// value changes: with it already 1, only the device's own switch helps.
	fix := key
	if v, ok := r.Evidence[key]; ok && v != "0" {
		fix = sysctlName(f, r.Iface, "forwarding")
	}
	r.Hint = "enable it in that netns: sysctl -w " + fix + "=1, and persist it in /etc/sysctl.d/ (routers, NAT gateways " +
		"and Kubernetes nodes need it)"
}

func addrErrors(r *report.Report, sys System) {
	if off, _ := forwardingOff(r, sys); off {
		forwardingDisabled(r)
		return
	}
	r.Cause = "bad_destination"
	r.Explanation = "the destination " + r.Dst + " is not valid here (broadcast, martian or an address this host will not route) " + where(r)
	r.Hint = "check `ip route get " + r.Dst + " from " + r.Src + " iif " + orAny(r.Iface) + "` in that netns"
}

func ipError(r *report.Report, sys System) {
	if off, _ := forwardingOff(r, sys); off {
		forwardingDisabled(r)
		return
	}
	noRoute(r, sys)
}

func noRoute(r *report.Report, sys System) {
	if routeType(r, sys) {
		return
	}
	r.Cause = "no_route"
	table := lookupTable(r, true)
	if table == "" {
		table = lookupTable(r, false)
	}
	if ip := net.ParseIP(r.Dst); ip != nil {
		if _, err := sys.RouteGet(r.Netns, ip, netns.RouteOptions{}); err != nil {
			evidence(r, "route_get", err.Error())
		}
	}
	r.Explanation = "no route to " + r.Dst + " in netns " + r.NetnsName
	if table != "" {
		r.Explanation += " (routing table " + table + " consulted)"
		evidence(r, "table", table)
	}
	if r.Iface != "" {
		r.Explanation += ", arriving on " + r.Iface
	}
	if r.Iface != "" && r.Location != "" && !strings.HasPrefix(r.Location, "ip_route_output") {
		// Received packets only: a local sender gets the error from send().
		back := senderGets(unix.RTN_UNSPEC, r.Family == "ipv6")
		evidence(r, "sender_got", back)
		r.Explanation += "; the sender got " + back
	}
	ip := "ip"
	if r.Family == "ipv6" {
		ip = "ip -6"
	}
	r.Hint = "add a route for " + r.Dst + " in netns " + r.NetnsName + " (`" + ip + " route add <subnet> via <gateway>`) or a default route"
}

// lookupTable is the routing table of the last lookup for this packet's
// destination on the path, of a failed one if failed. Lookups after the
// failure are the kernel routing its ICMP error back to the sender (other
// destination, often table local) and must not be named instead.
func lookupTable(r *report.Report, failed bool) string {
	for i := len(r.Path) - 1; i >= 0; i-- {
		s := r.Path[i]
		if s.Where != "route" || !strings.HasPrefix(s.Detail, "table ") || (s.Dst != "" && s.Dst != r.Dst) {
			continue
		}
		if failed && !strings.Contains(s.Detail, "(E") {
			continue
		}
		table, _, _ := strings.Cut(strings.TrimPrefix(s.Detail, "table "), ":")
		return table
	}
	return ""
}

func noSocket(r *report.Report, _ System) {
	r.Cause = "no_socket"
	port := r.Dport
	r.Explanation = fmt.Sprintf("nothing listens on %s port %d at %s in netns %s", r.Proto, port, r.Dst, r.NetnsName)
	if r.Proto == "tcp" {
		r.Explanation += " (the sender gets a TCP reset)"
	}
	r.Hint = fmt.Sprintf("start the service or fix the port; `ss -lnp` in that netns lists what listens (%s port %d)", r.Proto, port)
}
