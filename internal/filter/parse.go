// Package filter turns pktdrop's filter flags into the constants the BPF
// program is loaded with. Filtering happens in the kernel, so everything
// here must reduce to fixed-size values the verifier can fold.
package filter

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/reasons"
)

// Options are the raw flag values; zero values mean "not given".
type Options struct {
	Proto, Host, Src, Dst string
	Port, Sport, Dport    int
	Reasons               []string // --reason, each may be comma-separated
	ExcludeReasons        []string // --exclude-reason
	Iface, Netns          string
}

// NetnsParser resolves a --netns value to a namespace inode.
type NetnsParser func(string) (uint32, error)

// reasonBits is the size of the BPF reason bitmaps (4 x 64 bits).
const reasonBits = 256

// ifNameMax is IFNAMSIZ minus the terminating NUL.
const ifNameMax = 15

// Filter is a validated set of filters; all of them must match (AND).
type Filter struct {
	proto     uint8
	protoName string
	family    uint8 // 0, 4 or 6
	host      addrFilter
	src       addrFilter
	dst       addrFilter
	port      uint16
	sport     uint16
	dport     uint16
	iface     string
	netns     uint32
	netnsSpec string
	incl      []reason
	excl      []reason
}

type addrFilter struct {
	on     bool
	prefix netip.Prefix
}

func (a addrFilter) family() uint8 {
	if !a.on {
		return 0
	}
	if a.prefix.Addr().Is4() {
		return 4
	}
	return 6
}

type reason struct {
	name  string
	value uint32
}

// Parse validates opts. rt may be nil (treated as a kernel without drop
// reasons); nsParse may be nil to use netns.ParseSpec. Every error is a
// *UsageError.
func Parse(opts Options, rt *reasons.Table, nsParse NetnsParser) (*Filter, error) {
	f := &Filter{}
	if err := f.parseProto(opts.Proto); err != nil {
		return nil, err
	}
	for _, a := range []struct {
		flag, val string
		dst       *addrFilter
	}{{"host", opts.Host, &f.host}, {"src", opts.Src, &f.src}, {"dst", opts.Dst, &f.dst}} {
		if err := parseAddr(a.flag, a.val, a.dst); err != nil {
			return nil, err
		}
	}
	if err := f.resolveFamily(opts); err != nil {
		return nil, err
	}
	if err := f.parsePorts(opts); err != nil {
		return nil, err
	}
	if err := f.parseIface(opts.Iface); err != nil {
		return nil, err
	}
	if opts.Netns != "" {
		if nsParse == nil {
			nsParse = netns.ParseSpec
		}
		ino, err := nsParse(opts.Netns)
		if err != nil {
			return nil, usage("netns", opts.Netns, "%v", err)
		}
		f.netns, f.netnsSpec = ino, strings.TrimSpace(opts.Netns)
	}
	var err error
	if f.incl, err = parseReasons("reason", opts.Reasons, rt); err != nil {
		return nil, err
	}
	if f.excl, err = parseReasons("exclude-reason", opts.ExcludeReasons, rt); err != nil {
		return nil, err
	}
	for _, e := range f.excl {
		if slices.Contains(f.incl, e) {
			return nil, usage("exclude-reason", e.name, "also given to --reason, so nothing could match")
		}
	}
	return f, nil
}

var protoNames = map[string]uint8{
	"icmp":      1,
	"tcp":       6,
	"udp":       17,
	"icmp6":     58,
	"icmpv6":    58,
	"ipv6-icmp": 58,
	"sctp":      132,
}

// protoDisplay is the canonical name per number, for String.
var protoDisplay = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 132: "sctp"}

// protoFamily: ICMP and ICMPv6 only exist in one address family each.
var protoFamily = map[uint8]uint8{1: 4, 58: 6}

func (f *Filter) parseProto(s string) error {
	if s == "" {
		return nil
	}
	key := strings.ToLower(strings.TrimSpace(s))
	p, ok := protoNames[key]
	if !ok {
		n, err := strconv.ParseUint(key, 10, 8)
		if err != nil {
			return usage("proto", s, "want icmp, icmp6, tcp, udp, sctp or a protocol number 0-255")
		}
		if n == 0 {
			return usage("proto", s, "protocol 0 cannot be filtered on; omit --proto to match any protocol")
		}
		p = uint8(n)
	}
	f.proto = p
	f.protoName = protoDisplay[p]
	if f.protoName == "" {
		f.protoName = strconv.Itoa(int(p))
	}
	return nil
}

func parseAddr(flag, s string, out *addrFilter) error {
	if s == "" {
		return nil
	}
	t := strings.TrimSpace(s)
	var p netip.Prefix
	var err error
	if strings.Contains(t, "/") {
		p, err = netip.ParsePrefix(t)
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(t); err == nil && a.Zone() == "" {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil || !p.IsValid() {
		return usage(flag, s, "want an IPv4 or IPv6 address or CIDR prefix, e.g. 10.0.0.1, 10.0.0.0/8 or fd00::/64")
	}
	// The kernel sees a v4-mapped address as plain IPv4 on the wire.
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	out.on, out.prefix = true, p.Masked()
	return nil
}

// resolveFamily makes sure proto and addresses agree on one address family:
// a mix can never match, and silently matching nothing is the worst outcome
// for a live debugging tool.
func (f *Filter) resolveFamily(opts Options) error {
	fixedBy := ""
	if fam, ok := protoFamily[f.proto]; ok {
		f.family = fam
		fixedBy = "--proto " + f.protoName
	}
	for _, a := range []struct {
		flag, val string
		af        addrFilter
	}{{"host", opts.Host, f.host}, {"src", opts.Src, f.src}, {"dst", opts.Dst, f.dst}} {
		fam := a.af.family()
		if fam == 0 {
			continue
		}
		if f.family != 0 && fam != f.family {
			return usage(a.flag, a.val, "IPv%d address conflicts with %s (IPv%d)", fam, fixedBy, f.family)
		}
		if f.family == 0 {
			f.family = fam
			fixedBy = "--" + a.flag + " " + strconv.Quote(a.val)
		}
	}
	return nil
}

// portProtos have port numbers the BPF parser understands.
var portProtos = map[uint8]bool{6: true, 17: true, 132: true}

func (f *Filter) parsePorts(opts Options) error {
	for _, p := range []struct {
		flag string
		val  int
		dst  *uint16
	}{{"port", opts.Port, &f.port}, {"sport", opts.Sport, &f.sport}, {"dport", opts.Dport, &f.dport}} {
		if p.val == 0 {
			continue
		}
		v := strconv.Itoa(p.val)
		if p.val < 0 || p.val > 65535 {
			return usage(p.flag, v, "want a port number 1-65535")
		}
		if f.proto != 0 && !portProtos[f.proto] {
			return usage(p.flag, v, "ports need --proto tcp, udp or sctp, not %s", f.protoName)
		}
		*p.dst = uint16(p.val)
	}
	return nil
}

func (f *Filter) parseIface(s string) error {
	if s == "" {
		return nil
	}
	// The kernel's dev_valid_name rules, so a typo fails here rather than
	// silently matching nothing.
	if len(s) > ifNameMax || s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\r\v\f\x00") {
		return usage("iface", s, "want a device name of 1-%d bytes without '/', ':' or spaces", ifNameMax)
	}
	f.iface = s
	return nil
}

func parseReasons(flag string, vals []string, rt *reasons.Table) ([]reason, error) {
	var out []reason
	for _, v := range vals {
		items := strings.Split(v, ",")
		given := false
		for _, item := range items {
			name := strings.TrimSpace(item)
			if name == "" {
				continue // tolerate "A,B," and "A, B"
			}
			given = true
			r, err := lookupReason(flag, name, rt)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
		if !given {
			return nil, usage(flag, v, "want one or more drop reason names, e.g. NETFILTER_DROP")
		}
	}
	return out, nil
}

func lookupReason(flag, name string, rt *reasons.Table) (reason, error) {
	if rt == nil || !rt.Available() {
		return reason{}, usage(flag, name, "this kernel has no drop reasons (enum skb_drop_reason is missing from its BTF; needs Linux 5.17 or later)")
	}
	v, ok := rt.Value(name)
	if !ok {
		return reason{}, usage(flag, name, "unknown drop reason; valid: %s", strings.Join(rt.Names(), ", "))
	}
	canon := rt.Name(v)
	if v >= reasonBits {
		return reason{}, usage(flag, name, "%s has value %d, beyond the %d reasons the kernel-side filter can hold", canon, v, reasonBits)
	}
	return reason{canon, v}, nil
}

// Netns is the --netns filter's inode, 0 when unset.
func (f *Filter) Netns() uint32 { return f.netns }
