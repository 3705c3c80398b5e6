package nftext

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
)

// xt targets: REJECT, MARK, LOG, CT --notrack and the NAT targets, from
// their uapi info structs.

var reject4 = []string{"icmp-net-unreachable", "icmp-host-unreachable", "icmp-proto-unreachable", "icmp-port-unreachable",
	"icmp-echo-reply", "icmp-net-prohibited", "icmp-host-prohibited", "tcp-reset", "icmp-admin-prohibited"}
var reject6 = []string{"icmp6-no-route", "icmp6-adm-prohibited", "icmp6-not-neighbour", "icmp6-addr-unreachable",
	"icmp6-port-unreachable", "echo-reply", "tcp-reset", "icmp6-policy-fail", "icmp6-reject-route"}

func xtTarget(family string, t *expr.Target) (string, bool) {
	b, ok := blob(family, t.Rev, t.Info)
	if !ok {
		return "", false
	}
	switch t.Name {
	case "REJECT":
		names := reject4
		if family == "ip6" {
			names = reject6
		}
		if len(b) < 4 || int(ne.Uint32(b)) >= len(names) {
			return "", false
		}
		return "-j REJECT --reject-with " + names[ne.Uint32(b)], true
	case "LOG":
		// xt_log_info {u8 level, logflags; char prefix[30]}
		if len(b) < 32 {
			return "", false
		}
		s := "-j LOG"
		if p := strings.TrimRight(string(b[2:32]), "\x00"); p != "" {
			if i := strings.IndexByte(p, 0); i >= 0 {
				p = p[:i]
			}
			s += " --log-prefix " + saveString(p)
		}
		if b[0] != 4 {
			s += " --log-level " + strconv.Itoa(int(b[0]))
		}
		for i, f := range []string{"--log-tcp-sequence", "--log-tcp-options", "--log-ip-options", "--log-uid", "", "--log-macdecode"} {
			if b[1]&(1<<i) != 0 {
				if f == "" {
					return "", false
				}
				s += " " + f
			}
		}
		return s, true
	case "MARK":
		if t.Rev != 2 || len(b) < 8 {
			return "", false
		}
		return fmt.Sprintf("-j MARK --set-xmark 0x%x/0x%x", ne.Uint32(b), ne.Uint32(b[4:])), true
	case "CT":
		// xt_ct_target_info(_v1): u16 flags, zone; u32 ct_events,
		// exp_events; char helper[16]; only the bare --notrack form.
		if len(b) < 28 || ne.Uint16(b) != 1 || anyNonZero(b[2:28]) {
			return "", false
		}
		return "-j CT --notrack", true
	case "DNAT", "SNAT", "MASQUERADE", "REDIRECT":
		r, ok := natRange(family, t.Rev, b)
		if !ok {
			return "", false
		}
		return natTarget(t.Name, r)
	}
	return "", false
}

type nrange struct {
	flags            uint32
	minAddr, maxAddr netip.Addr
	minPort, maxPort uint16
	basePort         uint16
}

// natRange reads nf_nat_ipv4_multi_range_compat (rev 0 in ip tables:
// rangesize, then {flags, be32 min_ip, max_ip, be16 min, max}) or
// nf_nat_range/nf_nat_range2 {flags; 16-byte min, max; be16 min, max
// proto; be16 base}, which ip6 tables use from rev 0 on.
func natRange(family string, rev uint32, b []byte) (nrange, bool) {
	var r nrange
	if rev == 0 && family == "ip" {
		if len(b) < 20 || ne.Uint32(b) != 1 {
			return r, false
		}
		r.flags = ne.Uint32(b[4:])
		r.minAddr = netip.AddrFrom4([4]byte(b[8:12]))
		r.maxAddr = netip.AddrFrom4([4]byte(b[12:16]))
		r.minPort, r.maxPort = binary.BigEndian.Uint16(b[16:]), binary.BigEndian.Uint16(b[18:])
		return r, true
	}
	if len(b) < 40 || (rev == 0 && family != "ip6") {
		return r, false
	}
	r.flags = ne.Uint32(b)
	if family == "ip6" {
		r.minAddr, r.maxAddr = netip.AddrFrom16([16]byte(b[4:20])), netip.AddrFrom16([16]byte(b[20:36]))
	} else {
		r.minAddr, r.maxAddr = netip.AddrFrom4([4]byte(b[4:8])), netip.AddrFrom4([4]byte(b[20:24]))
	}
	r.minPort, r.maxPort = binary.BigEndian.Uint16(b[36:]), binary.BigEndian.Uint16(b[38:])
	if rev >= 2 && len(b) >= 42 {
		r.basePort = binary.BigEndian.Uint16(b[40:])
	}
	return r, true
}

func natTarget(name string, r nrange) (string, bool) {
	const mapIPs, proto, random, persistent, fully, offset = 1, 2, 4, 8, 16, 32
	if r.flags&offset != 0 {
		return "", false
	}
	var s strings.Builder
	s.WriteString("-j " + name)
	portText := func() string {
		p := strconv.Itoa(int(r.minPort))
		if r.maxPort != r.minPort {
			p += "-" + strconv.Itoa(int(r.maxPort))
		}
		return p
	}
	switch name {
	case "DNAT", "SNAT":
		if r.flags&(mapIPs|proto) == 0 {
			return "", false
		}
		s.WriteString(map[string]string{"DNAT": " --to-destination ", "SNAT": " --to-source "}[name])
		if r.flags&mapIPs != 0 {
			a := r.minAddr.String()
			if r.maxAddr != r.minAddr {
				a += "-" + r.maxAddr.String()
			}
			if r.minAddr.Is6() && r.flags&proto != 0 {
				a = "[" + a + "]"
			}
			s.WriteString(a)
		}
		if r.flags&proto != 0 {
			s.WriteString(":" + portText())
		}
	case "MASQUERADE", "REDIRECT":
		if r.flags&mapIPs != 0 {
			return "", false
		}
		if r.flags&proto != 0 {
			s.WriteString(" --to-ports " + portText())
		}
	}
	if r.flags&random != 0 {
		s.WriteString(" --random")
	}
	if r.flags&fully != 0 {
		s.WriteString(" --random-fully")
	}
	if r.flags&persistent != 0 {
		s.WriteString(" --persistent")
	}
	return s.String(), true
}
