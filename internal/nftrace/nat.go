package nftrace

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// natTarget finds the address[:port] a dnat/snat statement translates to,
// in nft ("dnat to 10.0.0.1:80", "dnat ip6 to [fd00::1]:80") or iptables
// ("--to-destination 10.0.0.1:80") syntax.
var natTarget = regexp.MustCompile(`\b(dnat|snat)(?: ip6?)? to (\S+)|--to-(destination|source) (\S+)`)

// translated applies a rule's dnat/snat target to t, for when no later
// chain in the netns showed the translated header. ok is false for
// masquerade, redirect, maps and ranges, whose result the text cannot say.
func translated(t Tuple, text string) (Tuple, bool) {
	m := natTarget.FindStringSubmatch(text)
	if m == nil {
		return t, false
	}
	kind, target := m[1], m[2]
	if kind == "" {
		kind, target = map[string]string{"destination": "dnat", "source": "snat"}[m[3]], m[4]
	}
	addr, port, ok := splitTarget(target)
	if !ok {
		return t, false
	}
	if kind == "dnat" {
		t.Dst = addr
		if port != 0 {
			t.Dport = port
		}
	} else {
		t.Src = addr
		if port != 0 {
			t.Sport = port
		}
	}
	return t, true
}

func splitTarget(s string) (netip.Addr, uint16, bool) {
	if strings.ContainsAny(s, "-{@") { // ranges, maps, sets
		return netip.Addr{}, 0, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), ap.Port(), true
	}
	s = strings.Trim(s, "[]")
	if a, err := netip.ParseAddr(s); err == nil {
		return a, 0, true
	}
	// "10.0.0.1:80" with a port list or similar: give up.
	if i := strings.LastIndex(s, ":"); i > 0 && strings.Count(s, ":") == 1 {
		a, err1 := netip.ParseAddr(s[:i])
		p, err2 := strconv.ParseUint(s[i+1:], 10, 16)
		if err1 == nil && err2 == nil {
			return a, uint16(p), true
		}
	}
	return netip.Addr{}, 0, false
}
