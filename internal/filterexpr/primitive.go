package filterexpr

import (
	"net/netip"
	"strconv"
	"strings"
)

// primitive builds `[proto] [dir] typ id` (net ids may continue with
// `mask M`).
func (p *parser) primitive(q qual, id token) (node, *posError) {
	switch q.typ {
	case "host", "net":
		if q.proto != "" && q.proto != "ip" && q.proto != "ip6" {
			return nil, errAt(id, "%q cannot qualify %s (only ip or ip6 can)", q.proto, q.typ)
		}
		var pfx netip.Prefix
		var err *posError
		if q.typ == "host" {
			pfx, err = parseHost(id)
		} else {
			pfx, err = p.parseNet(id)
		}
		if err != nil {
			return nil, err
		}
		if is4 := pfx.Addr().Is4(); q.proto == "ip" && !is4 || q.proto == "ip6" && is4 {
			return nil, errAt(id, "%s %s: address family differs from %s", q.typ, id.text, q.proto)
		}
		return dirNode(q.dir, addrAtom(opSrc, pfx), addrAtom(opDst, pfx)), nil
	case "port", "portrange":
		if q.proto == "ip" || q.proto == "ip6" {
			return nil, errAt(id, "%q cannot qualify %s (as in tcpdump; use e.g. `ip and port 80`)", q.proto, q.typ)
		}
		lo, hi, err := parsePorts(q.typ, id)
		if err != nil {
			return nil, err
		}
		n := dirNode(q.dir, rng(opSport, lo, hi), rng(opDport, lo, hi))
		// The tuple's ports are 0 unless the packet is TCP, UDP or SCTP,
		// so only a range holding 0 needs the protocol test that
		// libpcap's port primitive makes.
		var guard node
		switch q.proto {
		case "tcp", "udp", "sctp":
			guard = protoNode(q.proto)
		default:
			if lo == 0 {
				guard = portProtos()
			}
		}
		if guard != nil {
			// The cheaper, more selective port test first.
			return and(n, guard), nil
		}
		return n, nil
	}
	return nil, errAt(id, "unknown qualifier %q", q.typ)
}

func portProtos() node {
	return or(eq(opProto, 6), eq(opProto, 17), eq(opProto, 132))
}

func dirNode(dir string, src, dst node) node {
	switch dir {
	case "src":
		return src
	case "dst":
		return dst
	case "src and dst":
		return and(src, dst)
	}
	return or(src, dst)
}

func addrAtom(op opT, pfx netip.Prefix) node {
	a := &atom{op: op, plen: uint8(pfx.Bits()), fam: 6}
	if pfx.Addr().Is4() {
		a.fam = 4
	}
	copy(a.addr[:], pfx.Addr().AsSlice())
	return a
}

func parseHost(id token) (netip.Prefix, *posError) {
	if strings.Contains(id.text, "/") {
		return netip.Prefix{}, errAt(id, "host %s: a prefix needs net, not host", id.text)
	}
	a, err := netip.ParseAddr(id.text)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errAt(id, "want an IPv4 or IPv6 address after host, found %q (names are not resolved)", id.text)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseNet takes 10.0.0.0/8, fd00::/64, 10.1 (a /16 as in libpcap),
// 10.0.0.1 (a /32) and `10.0.0.0 mask 255.0.0.0`.
func (p *parser) parseNet(id token) (netip.Prefix, *posError) {
	bad := errAt(id, "want a network after net (10.0.0.0/8, 10.1, fd00::/64, 10.0.0.0 mask 255.0.0.0), found %q", id.text)
	text := id.text
	if addr, bits, ok := strings.Cut(text, "/"); ok {
		a, err := parseNetAddr(addr)
		n, nerr := strconv.Atoi(bits)
		if err != nil || nerr != nil || n < 0 || n > a.BitLen() {
			return netip.Prefix{}, bad
		}
		return checkNetBits(id, netip.PrefixFrom(a, n))
	}
	a, err := parseNetAddr(text)
	if err != nil {
		return netip.Prefix{}, bad
	}
	bits := a.BitLen()
	if a.Is4() && !strings.Contains(text, ":") {
		bits = 8 * (strings.Count(text, ".") + 1)
	}
	if m := p.peek(); m.kind == tWord && strings.EqualFold(m.text, "mask") {
		p.next()
		mt := p.next()
		mask, merr := netip.ParseAddr(mt.text)
		if !a.Is4() || merr != nil || !mask.Is4() || strings.Count(text, ".") != 3 {
			return netip.Prefix{}, errAt(mt, "want an IPv4 network and a dotted mask, e.g. net 10.0.0.0 mask 255.0.0.0")
		}
		b := mask.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		n := 0
		for n < 32 && v&(1<<(31-n)) != 0 {
			n++
		}
		if n < 32 && v<<n != 0 {
			return netip.Prefix{}, errAt(mt, "mask %s is not contiguous: pktdrop matches prefixes only", mt.text)
		}
		bits = n
	}
	return checkNetBits(id, netip.PrefixFrom(a, bits))
}

// parseNetAddr also takes libpcap's short IPv4 networks: 10, 10.1, 10.1.2.
func parseNetAddr(s string) (netip.Addr, error) {
	if !strings.Contains(s, ":") {
		if parts := strings.Split(s, "."); len(parts) < 4 {
			for len(parts) < 4 {
				parts = append(parts, "0")
			}
			s = strings.Join(parts, ".")
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, strconv.ErrSyntax
	}
	return a.Unmap(), nil
}

func checkNetBits(id token, pfx netip.Prefix) (netip.Prefix, *posError) {
	if pfx.Masked() != pfx {
		return netip.Prefix{}, errAt(id, "net %s: non-network bits set (did you mean %s?)", id.text, pfx.Masked())
	}
	return pfx, nil
}

func parsePorts(typ string, id token) (uint16, uint16, *posError) {
	if typ == "port" {
		v, ok := parseNum(id.text)
		if !ok || v > 65535 {
			return 0, 0, errAt(id, "want a port number 0-65535 after port, found %q (service names are not resolved)", id.text)
		}
		return uint16(v), uint16(v), nil
	}
	a, b, found := strings.Cut(id.text, "-")
	lo, ok1 := parseNum(a)
	hi, ok2 := parseNum(b)
	if !found || !ok1 || !ok2 || lo > 65535 || hi > 65535 {
		return 0, 0, errAt(id, "want a port range like 1000-2000 after portrange, found %q", id.text)
	}
	if lo > hi {
		lo, hi = hi, lo // as libpcap does
	}
	return uint16(lo), uint16(hi), nil
}

// parseNum reads decimal, 0x hex and 0 octal numbers, as libpcap does.
func parseNum(s string) (uint32, bool) {
	if s == "" || strings.ContainsAny(s, "_+-") {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}
