package netns

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Rule is one policy routing rule (`ip rule`), with its action, which
// netlink.RuleList does not return.
type Rule struct {
	Priority int
	Action   uint8 // FR_ACT_*
	Table    int
	Goto     int
	Invert   bool
	Src, Dst *net.IPNet
	Iif, Oif string
	Mark     uint32
	Mask     uint32 // 0xffffffff when the rule gives no mask
	HasMark  bool
	Tos      uint8
	IPProto  uint8
	// Sport and Dport are [lo, hi]; zero when absent.
	Sport, Dport [2]uint16
	// SuppressPrefixlen: routes with a prefix this short or shorter are
	// ignored (-1: none), as wg-quick uses it.
	SuppressPrefixlen int
	// Unchecked names selectors this package does not evaluate (uid range,
	// l3mdev, tunnel id, ifgroup): a rule with one is reported, not matched.
	Unchecked []string
}

// FRA_* attributes nl does not define.
const (
	fraL3MDEV   = 19
	fraUIDRange = 20
)

// rules dumps the rules of one family in the thread's current namespace,
// in the kernel's order (by priority).
func rules(family int) ([]Rule, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETRULE, unix.NLM_F_DUMP)
	req.AddData(nl.NewRtMsg())
	req.Data[0].(*nl.RtMsg).Family = uint8(family)
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWRULE)
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	out := make([]Rule, 0, len(msgs))
	for _, m := range msgs {
		msg := nl.DeserializeRtMsg(m)
		attrs, err := nl.ParseRouteAttr(m[msg.Len():])
		if err != nil {
			return nil, fmt.Errorf("parse rule: %w", err)
		}
		r := Rule{Action: msg.Type, Table: int(msg.Table), Invert: msg.Flags&unix.FIB_RULE_INVERT != 0,
			Tos: msg.Tos, Mask: 0xffffffff, SuppressPrefixlen: -1}
		if r.Tos != 0 {
			r.Unchecked = append(r.Unchecked, "tos") // the packet's TOS is not in the report
		}
		u32 := func(b []byte) uint32 { return nl.NativeEndian().Uint32(b[:4]) }
		for _, a := range attrs {
			v := a.Value
			switch a.Attr.Type {
			case nl.FRA_PRIORITY:
				r.Priority = int(u32(v))
			case nl.FRA_TABLE:
				r.Table = int(u32(v))
			case nl.FRA_GOTO:
				r.Goto = int(u32(v))
			case nl.FRA_SRC:
				r.Src = &net.IPNet{IP: net.IP(v), Mask: net.CIDRMask(int(msg.Src_len), 8*len(v))}
			case nl.FRA_DST:
				r.Dst = &net.IPNet{IP: net.IP(v), Mask: net.CIDRMask(int(msg.Dst_len), 8*len(v))}
			case nl.FRA_IIFNAME:
				r.Iif = strings.TrimRight(string(v), "\x00")
			case nl.FRA_OIFNAME:
				r.Oif = strings.TrimRight(string(v), "\x00")
			case nl.FRA_FWMARK:
				r.Mark, r.HasMark = u32(v), true
			case nl.FRA_FWMASK:
				r.Mask, r.HasMark = u32(v), true
			case nl.FRA_IP_PROTO:
				r.IPProto = v[0]
			case nl.FRA_SPORT_RANGE:
				r.Sport = [2]uint16{nl.NativeEndian().Uint16(v[0:2]), nl.NativeEndian().Uint16(v[2:4])}
			case nl.FRA_DPORT_RANGE:
				r.Dport = [2]uint16{nl.NativeEndian().Uint16(v[0:2]), nl.NativeEndian().Uint16(v[2:4])}
			case nl.FRA_SUPPRESS_PREFIXLEN:
				if n := u32(v); n != 0xffffffff {
					r.SuppressPrefixlen = int(n)
				}
			case nl.FRA_SUPPRESS_IFGROUP:
				if u32(v) != 0xffffffff {
					r.Unchecked = append(r.Unchecked, "suppress_ifgroup")
				}
			case nl.FRA_TUN_ID:
				r.Unchecked = append(r.Unchecked, "tun_id")
			case fraL3MDEV:
				if v[0] != 0 {
					r.Unchecked = append(r.Unchecked, "l3mdev")
				}
			case fraUIDRange:
				// The default rules carry the full range on some kernels.
				if lo, hi := u32(v[0:4]), u32(v[4:8]); lo != 0 || hi != 0xffffffff {
					r.Unchecked = append(r.Unchecked, "uidrange")
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Selector renders what the rule matches as `ip rule` does ("from all",
// "from 10.0.0.0/24 iif eth0 fwmark 0x1").
func (r Rule) Selector() string {
	var b []string
	if r.Invert {
		b = append(b, "not")
	}
	b = append(b, "from "+prefixOrAll(r.Src))
	if r.Dst != nil {
		b = append(b, "to "+r.Dst.String())
	}
	if r.Tos != 0 {
		b = append(b, fmt.Sprintf("tos 0x%02x", r.Tos))
	}
	if r.HasMark {
		s := fmt.Sprintf("fwmark 0x%x", r.Mark)
		if r.Mask != 0xffffffff {
			s += fmt.Sprintf("/0x%x", r.Mask)
		}
		b = append(b, s)
	}
	if r.Iif != "" {
		b = append(b, "iif "+r.Iif)
	}
	if r.Oif != "" {
		b = append(b, "oif "+r.Oif)
	}
	if r.IPProto != 0 {
		b = append(b, "ipproto "+strconv.Itoa(int(r.IPProto)))
	}
	for _, p := range []struct {
		name string
		r    [2]uint16
	}{{"sport", r.Sport}, {"dport", r.Dport}} {
		switch {
		case p.r[0] == 0 && p.r[1] == 0:
		case p.r[0] == p.r[1]:
			b = append(b, p.name+" "+strconv.Itoa(int(p.r[0])))
		default:
			b = append(b, fmt.Sprintf("%s %d-%d", p.name, p.r[0], p.r[1]))
		}
	}
	return strings.Join(b, " ")
}

// String renders the rule as one line of `ip rule`.
func (r Rule) String() string {
	s := strconv.Itoa(r.Priority) + ": " + r.Selector()
	switch r.Action {
	case unix.FR_ACT_TO_TBL:
		s += " lookup " + TableName(r.Table)
		if r.SuppressPrefixlen >= 0 {
			s += " suppress_prefixlength " + strconv.Itoa(r.SuppressPrefixlen)
		}
	case unix.FR_ACT_GOTO:
		s += " goto " + strconv.Itoa(r.Goto)
	case unix.FR_ACT_NOP:
		s += " nop"
	default:
		s += " " + RouteTypeName(int(r.Action))
	}
	return s
}

func prefixOrAll(n *net.IPNet) string {
	if n == nil {
		return "all"
	}
	if ones, _ := n.Mask.Size(); ones == 0 {
		return "all"
	}
	return n.String()
}
