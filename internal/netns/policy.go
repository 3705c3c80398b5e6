package netns

import (
	"fmt"
	"net"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Query is a route lookup as the kernel makes it for a received packet:
// policy rules select on these.
type Query struct {
	Family       int // unix.AF_INET or AF_INET6
	Dst, Src     net.IP
	Iif          string
	Mark         uint32
	Proto        uint8
	Sport, Dport uint16
}

// RouteEntry is one route of a table, as `ip route show table T` lists it.
type RouteEntry struct {
	Type    int // RTN_*
	Prefix  *net.IPNet
	Table   int
	Gateway net.IP
	Dev     string
}

// String renders the route as `ip route` does: "blackhole 10.0.0.0/24",
// "10.0.0.0/24 via 10.1.0.1 dev eth0".
func (e RouteEntry) String() string {
	s := ""
	if e.Type != unix.RTN_UNICAST {
		s = RouteTypeName(e.Type) + " "
	}
	s += prefixOrDefault(e.Prefix)
	if e.Gateway != nil {
		s += " via " + e.Gateway.String()
	}
	if e.Dev != "" {
		s += " dev " + e.Dev
	}
	return s
}

// Decision is what policy routing does with a Query: which rules were
// tried, which one decided, and the route it found.
type Decision struct {
	// Rule is the rule that decided: its table held the route, or its
	// action (blackhole, unreachable, prohibit) was the answer. Nil when
	// no rule's table had a route.
	Rule *Rule
	// Route is the route that answered; nil when a rule's action did, or
	// nothing did.
	Route *RouteEntry
	// Thrown lists throw routes that sent the lookup on to the next rule.
	Thrown []RouteEntry
	// Unchecked lists rules skipped because they select on something
	// this package cannot evaluate: the answer may differ if they match.
	Unchecked []Rule
}

// Type is the RTN_* of the answer: the route's type, or the deciding
// rule's action; RTN_UNREACHABLE with no rule when nothing matched (the
// kernel's "network unreachable").
func (d Decision) Type() int {
	switch {
	case d.Route != nil:
		return d.Route.Type
	case d.Rule != nil:
		return int(d.Rule.Action)
	}
	return unix.RTN_UNREACHABLE
}

// PolicyRoute walks the rules and tables of netns inode as the kernel's
// fib_rules_lookup does, from what netlink lists. Unlike RouteGet it
// tells which rule chose the table and finds blackhole, unreachable,
// prohibit and throw routes, where `ip route get` only gets an error.
func (r *Resolver) PolicyRoute(inode uint32, q Query) (Decision, error) {
	var d Decision
	err := r.withHandle(inode, func(h *netlink.Handle) error {
		var rs []Rule
		var err error
		if err := r.Do(inode, func() error { rs, err = rules(q.Family); return nil }); err != nil {
			return err
		}
		if err != nil {
			return err
		}
		d, err = decide(h, rs, q)
		return err
	})
	if err != nil {
		return Decision{}, fmt.Errorf("policy routing to %s in netns %d: %w", q.Dst, inode, err)
	}
	return d, nil
}

func decide(h *netlink.Handle, rs []Rule, q Query) (Decision, error) {
	var d Decision
	tables := map[int][]netlink.Route{}
	gotoPrio := -1
	for i := range rs {
		rule := rs[i]
		if rule.Priority < gotoPrio {
			continue
		}
		gotoPrio = -1
		if !rule.matches(q) {
			continue
		}
		if len(rule.Unchecked) > 0 {
			d.Unchecked = append(d.Unchecked, rule)
			continue
		}
		switch rule.Action {
		case unix.FR_ACT_NOP:
			continue
		case unix.FR_ACT_GOTO:
			gotoPrio = rule.Goto
			continue
		case unix.FR_ACT_TO_TBL:
		default:
			d.Rule = &rule
			return d, nil
		}
		routes, ok := tables[rule.Table]
		if !ok {
			var err error
			routes, err = h.RouteListFiltered(q.Family, &netlink.Route{Table: rule.Table}, netlink.RT_FILTER_TABLE)
			if err != nil {
				return d, fmt.Errorf("list table %s: %w", TableName(rule.Table), err)
			}
			tables[rule.Table] = routes
		}
		best := longestMatch(routes, q.Dst)
		if best == nil {
			continue
		}
		if ones, _ := prefix(best, q.Family).Mask.Size(); ones <= rule.SuppressPrefixlen {
			continue
		}
		e := entry(h, best, q.Family)
		if e.Type == unix.RTN_THROW {
			d.Thrown = append(d.Thrown, e)
			continue
		}
		d.Rule, d.Route = &rule, &e
		return d, nil
	}
	return d, nil
}

func (rule Rule) matches(q Query) bool {
	m := func() bool {
		if rule.Src != nil && q.Src != nil && !rule.Src.Contains(q.Src) {
			return false
		}
		if rule.Src != nil && q.Src == nil {
			if ones, _ := rule.Src.Mask.Size(); ones > 0 {
				return false
			}
		}
		if rule.Dst != nil && !rule.Dst.Contains(q.Dst) {
			return false
		}
		if rule.Iif != "" && rule.Iif != q.Iif {
			return false
		}
		if rule.Oif != "" {
			return false // forwarded and received packets have no oif when routed
		}
		if rule.HasMark && (q.Mark^rule.Mark)&rule.Mask != 0 {
			return false
		}
		if rule.IPProto != 0 && rule.IPProto != q.Proto {
			return false
		}
		if rule.Sport != [2]uint16{} && (q.Sport < rule.Sport[0] || q.Sport > rule.Sport[1]) {
			return false
		}
		if rule.Dport != [2]uint16{} && (q.Dport < rule.Dport[0] || q.Dport > rule.Dport[1]) {
			return false
		}
		return true
	}()
	return m != rule.Invert
}

func prefix(rt *netlink.Route, family int) *net.IPNet {
	if rt.Dst != nil && rt.Dst.IP != nil {
		return rt.Dst
	}
	if family == unix.AF_INET6 {
		return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
}

// longestMatch is the route with the longest prefix containing dst; among
// equal prefixes the lowest metric, as the kernel orders them.
func longestMatch(routes []netlink.Route, dst net.IP) *netlink.Route {
	var best *netlink.Route
	bestLen := -1
	for i := range routes {
		rt := &routes[i]
		p := prefix(rt, rt.Family)
		if rt.Family == 0 {
			p = prefix(rt, familyOf(dst))
		}
		if !p.Contains(dst) {
			continue
		}
		ones, _ := p.Mask.Size()
		if ones > bestLen || (ones == bestLen && rt.Priority < best.Priority) {
			best, bestLen = rt, ones
		}
	}
	return best
}

func familyOf(ip net.IP) int {
	if ip.To4() != nil {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func entry(h *netlink.Handle, rt *netlink.Route, family int) RouteEntry {
	e := RouteEntry{Type: rt.Type, Prefix: prefix(rt, family), Table: rt.Table, Gateway: rt.Gw}
	if rt.LinkIndex > 0 {
		if l, err := h.LinkByIndex(rt.LinkIndex); err == nil {
			e.Dev = l.Attrs().Name
		}
	}
	return e
}

// RouteTypeName names an RTN_* route type (or the FR_ACT_* action of a
// rule with the same number: blackhole, unreachable, prohibit) as ip does.
func RouteTypeName(t int) string {
	switch t {
	case unix.RTN_UNICAST:
		return "unicast"
	case unix.RTN_LOCAL:
		return "local"
	case unix.RTN_BROADCAST:
		return "broadcast"
	case unix.RTN_ANYCAST:
		return "anycast"
	case unix.RTN_MULTICAST:
		return "multicast"
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	case unix.RTN_THROW:
		return "throw"
	case unix.RTN_NAT:
		return "nat"
	}
	return "type " + strconv.Itoa(t)
}

// TableName names a routing table id as ip does.
func TableName(id int) string {
	switch id {
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	}
	return strconv.Itoa(id)
}

func prefixOrDefault(n *net.IPNet) string {
	if ones, _ := n.Mask.Size(); ones == 0 {
		return "default"
	}
	return n.String()
}
