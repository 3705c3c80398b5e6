package cause

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/report"
	"golang.org/x/sys/unix"
)

// PolicyRouter walks a namespace's policy rules and routing tables
// (*netns.Resolver). It is optional: a System without it gets the plain
// no-route cause.
type PolicyRouter interface {
	PolicyRoute(inode uint32, q netns.Query) (netns.Decision, error)
}

// failedLookup is the kernel's own answer on the path: the error of the
// last failed route lookup for the packet's destination (0: none seen).
func failedLookup(r *report.Report) (errno int32, table string) {
	for i := len(r.Path) - 1; i >= 0; i-- {
		s := r.Path[i]
		if s.Where != "route" || (s.Dst != "" && s.Dst != r.Dst) || !strings.Contains(s.Detail, "(E") {
			continue
		}
		table, _, _ = strings.Cut(strings.TrimPrefix(s.Detail, "table "), ":")
		name := s.Detail[strings.LastIndex(s.Detail, "(E")+1 : len(s.Detail)-1]
		return errnoByName(name), table
	}
	return 0, ""
}

func errnoByName(name string) int32 {
	for e := syscall.Errno(1); e < 256; e++ {
		if unix.ErrnoName(e) == name {
			return -int32(e)
		}
	}
	return 0
}

// kernelRouteType is the route type a failed fib lookup's error stands
// for: the kernel returns the error of the route type it found
// (fib_props / ip6_rt_type_to_error).
func kernelRouteType(errno int32) (int, bool) {
	switch syscall.Errno(-errno) {
	case syscall.EINVAL:
		return unix.RTN_BLACKHOLE, true
	case syscall.EHOSTUNREACH:
		return unix.RTN_UNREACHABLE, true
	case syscall.EACCES:
		return unix.RTN_PROHIBIT, true
	}
	return 0, false
}

// routeQuery is the lookup the kernel made for this packet.
func routeQuery(r *report.Report) (netns.Query, bool) {
	dst := net.ParseIP(r.Dst)
	if dst == nil {
		return netns.Query{}, false
	}
	q := netns.Query{Family: unix.AF_INET, Dst: dst, Src: net.ParseIP(r.Src), Iif: r.Iface, Mark: r.Mark,
		Sport: r.Sport, Dport: r.Dport}
	if r.Family == "ipv6" {
		q.Family = unix.AF_INET6
	}
	switch r.Proto {
	case "tcp":
		q.Proto = unix.IPPROTO_TCP
	case "udp":
		q.Proto = unix.IPPROTO_UDP
	case "icmp":
		q.Proto = unix.IPPROTO_ICMP
	case "icmp6":
		q.Proto = unix.IPPROTO_ICMPV6
	}
	return q, true
}

// routeType names a drop by the route that decided it: a blackhole,
// unreachable, prohibit or throw route, or a rule whose action is one of
// those. It returns false when neither the path nor the namespace's tables
// show one (a plain missing route).
func routeType(r *report.Report, sys System) bool {
	errno, _ := failedLookup(r)
	if errno != 0 {
		evidence(r, "route_lookup_error", report.FIBError(errno))
	}
	kernelType, kernelKnows := kernelRouteType(errno)
	pr, ok := sys.(PolicyRouter)
	q, okQ := routeQuery(r)
	var d netns.Decision
	var err error
	if ok && okQ {
		d, err = pr.PolicyRoute(r.Netns, q)
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			evidence(r, "policy_route_error", err.Error())
		}
	}
	known := ok && okQ && err == nil
	typ := d.Type()
	if kernelKnows && (!known || typ != kernelType) {
		// The kernel's answer at the time of the drop wins over what the
		// tables hold now; the tables then cannot name the route.
		typ, d = kernelType, netns.Decision{}
		known = false
	}
	thrown := known && len(d.Thrown) > 0 && d.Rule == nil
	if !kernelKnows && !(known && (d.Route != nil || d.Rule != nil) && isRejectType(typ)) && !thrown {
		if known {
			noteRules(r, d)
		}
		return false
	}
	name := netns.RouteTypeName(typ)
	six := r.Family == "ipv6"
	ip := "ip"
	if six {
		ip = "ip -6"
	}
	var b strings.Builder
	var fix []string
	switch {
	case thrown:
		r.Cause = "throw_route"
		t := d.Thrown[0]
		fmt.Fprintf(&b, "the route `throw %s` in table %s sent the lookup for %s on to the next rule, and no later rule's table has a route",
			prefixString(t.Prefix), netns.TableName(t.Table), r.Dst)
		evidence(r, "route", "throw "+prefixString(t.Prefix)+" table "+netns.TableName(t.Table))
		evidence(r, "route_type", "throw")
		evidence(r, "route_prefix", prefixString(t.Prefix))
		evidence(r, "route_table", netns.TableName(t.Table))
		typ = unix.RTN_UNSPEC // nothing found: the kernel answers network unreachable
		fix = append(fix, fmt.Sprintf("add the route to the table a later rule consults (`%s route add %s via <gateway>`), or remove the throw (`%s route del throw %s table %s`)",
			ip, prefixString(t.Prefix), ip, prefixString(t.Prefix), netns.TableName(t.Table)))
	case known && d.Route != nil:
		rt := d.Route
		r.Cause = name + "_route"
		fmt.Fprintf(&b, "the %s route `%s` in table %s matches %s", name, rt, netns.TableName(rt.Table), r.Dst)
		evidence(r, "route", rt.String()+" table "+netns.TableName(rt.Table))
		evidence(r, "route_type", name)
		evidence(r, "route_prefix", prefixString(rt.Prefix))
		evidence(r, "route_table", netns.TableName(rt.Table))
		fix = append(fix, fmt.Sprintf("if %s must be reachable, replace that route (`%s route replace %s via <gateway> table %s`) or delete it (`%s route del %s %s table %s`)",
			r.Dst, ip, prefixString(rt.Prefix), netns.TableName(rt.Table), ip, name, prefixString(rt.Prefix), netns.TableName(rt.Table)))
	case known && d.Rule != nil:
		r.Cause = name + "_rule"
		fmt.Fprintf(&b, "the policy rule `%s` answers %s with %s", d.Rule, r.Dst, name)
		fix = append(fix, fmt.Sprintf("if that rule is wrong, delete it (`%s rule del pref %d`)", ip, d.Rule.Priority))
	default:
		r.Cause = name + "_route"
		fmt.Fprintf(&b, "the kernel's route lookup for %s found a %s", r.Dst, report.FIBError(errno))
		evidence(r, "route_type", name)
		fix = append(fix, fmt.Sprintf("find it with `%s route show table all type %s` and replace or delete it", ip, name))
	}
	if w := where(r); w != "" {
		b.WriteString(" " + w)
	}
	if known && d.Rule != nil && d.Route != nil {
		evidence(r, "rule", d.Rule.String())
		evidence(r, "rule_priority", strconv.Itoa(d.Rule.Priority))
		evidence(r, "rule_selector", d.Rule.Selector())
		if !defaultRule(*d.Rule) {
			fmt.Fprintf(&b, "; table %s was chosen by the rule `%s`", netns.TableName(d.Rule.Table), d.Rule)
			fix = append(fix, fmt.Sprintf("or change the rule that chose the table (`%s rule del pref %d`)", ip, d.Rule.Priority))
		}
	}
	if d.Rule != nil && d.Route == nil {
		evidence(r, "rule_action", name)
		evidence(r, "rule", d.Rule.String())
		evidence(r, "rule_priority", strconv.Itoa(d.Rule.Priority))
		evidence(r, "rule_selector", d.Rule.Selector())
	}
	back := senderGets(typ, six)
	evidence(r, "sender_got", back)
	fmt.Fprintf(&b, "; the sender got %s", back)
	noteRules(r, d)
	r.Explanation = b.String()
	r.Hint = strings.Join(fix, ", ")
	if r.NetnsName != "" {
		r.Hint += " in netns " + r.NetnsName
	}
	return true
}

func isRejectType(t int) bool {
	return t == unix.RTN_BLACKHOLE || t == unix.RTN_UNREACHABLE || t == unix.RTN_PROHIBIT
}

// defaultRule: the rules every namespace starts with, which choose
// nothing worth naming.
func defaultRule(rule netns.Rule) bool {
	if rule.Selector() != "from all" || rule.Action != unix.FR_ACT_TO_TBL {
		return false
	}
	return (rule.Priority == 0 && rule.Table == unix.RT_TABLE_LOCAL) ||
		(rule.Priority == 32766 && rule.Table == unix.RT_TABLE_MAIN) ||
		(rule.Priority == 32767 && rule.Table == unix.RT_TABLE_DEFAULT)
}

func noteRules(r *report.Report, d netns.Decision) {
	if len(d.Unchecked) > 0 {
		var s []string
		for _, u := range d.Unchecked {
			s = append(s, u.String()+" (selects on "+strings.Join(u.Unchecked, ",")+")")
		}
		evidence(r, "rules_not_evaluated", strings.Join(s, "; "))
	}
}

// senderGets is the ICMP error the kernel answers a forwarded packet
// with, by route type (ip_error; ip6_pkt_discard / ip6_pkt_prohibit;
// a blackhole discards silently in both).
func senderGets(typ int, six bool) string {
	switch {
	case typ == unix.RTN_BLACKHOLE:
		return "nothing (a blackhole sends no ICMP error)"
	case typ == unix.RTN_PROHIBIT && six:
		return "ICMPv6 destination unreachable, administratively prohibited (type 1 code 1)"
	case typ == unix.RTN_PROHIBIT:
		return "ICMP destination unreachable, communication administratively prohibited (type 3 code 13)"
	case six:
		return "ICMPv6 destination unreachable, no route (type 1 code 0)"
	case typ == unix.RTN_UNREACHABLE:
		return "ICMP host unreachable (type 3 code 1)"
	}
	return "ICMP net unreachable (type 3 code 0)"
}

func prefixString(n *net.IPNet) string {
	if n == nil {
		return "default"
	}
	if ones, _ := n.Mask.Size(); ones == 0 {
		return "default"
	}
	return n.String()
}

// dstDiscard: a route whose output discards (an IPv6 blackhole route, or
// a cached route being torn down) freed it.
func dstDiscard(r *report.Report, sys System) {
	if routeType(r, sys) {
		return
	}
	r.Cause = "route_discard"
	r.Explanation = "the route the packet to " + r.Dst + " took discards it (a blackhole route, or a route being removed) " + where(r)
	ip := "ip"
	if r.Family == "ipv6" {
		ip = "ip -6"
	}
	r.Hint = "check `" + ip + " route get " + r.Dst + "` and `" + ip + " route show table all type blackhole` in that netns"
}
