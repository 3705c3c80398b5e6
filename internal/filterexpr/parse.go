package filterexpr

import (
	"fmt"
	"net/netip"
	"strings"
)

// qual are a primitive's qualifiers: `[proto] [dir] [type] id`.
type qual struct {
	proto string // "", ip, ip6, tcp, udp, sctp
	dir   string // "", src, dst, "src or dst", "src and dst"
	typ   string // host, net, port, portrange
}

type parser struct {
	toks []token
	i    int
	// last holds the qualifiers of the last primitive with an id: a bare
	// id inherits them, as in tcpdump (`host a or b`, `port 80 or 443`).
	last qual
}

// posError is a syntax error at a byte offset of the expression.
type posError struct {
	pos int
	msg string
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekN(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func errAt(t token, format string, args ...any) *posError {
	return &posError{pos: t.pos, msg: fmt.Sprintf(format, args...)}
}

func describe(t token) string {
	if t.kind == tEOF {
		return "end of expression"
	}
	return fmt.Sprintf("%q", t.text)
}

func isAnd(t token) bool { return t.text == "and" || t.text == "&&" }
func isOr(t token) bool  { return t.text == "or" || t.text == "||" }
func isNot(t token) bool { return t.text == "not" || (t.kind == tOp && t.text == "!") }

// parseExpr: `and` and `or` have equal precedence and associate to the
// left, as in libpcap's grammar (`a or b and c` is `(a or b) and c`);
// `not` binds tighter.
func (p *parser) parseExpr() (node, *posError) {
	n, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case isAnd(t):
			p.next()
			r, err := p.parseUnary()
			if err != nil {
				return nil, err
			}
			n = andNode{n, r}
		case isOr(t):
			p.next()
			r, err := p.parseUnary()
			if err != nil {
				return nil, err
			}
			n = orNode{n, r}
		default:
			return n, nil
		}
	}
}

func (p *parser) parseUnary() (node, *posError) {
	if isNot(p.peek()) {
		p.next()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return notNode{x}, nil
	}
	return p.parsePrimary()
}

func (p *parser) parsePrimary() (node, *posError) {
	t := p.peek()
	if t.kind == tOp && t.text == "(" {
		// Either a parenthesised expression or the start of a
		// comparison, `(tcp[13] & 2) != 0`: try the comparison first.
		save, last := p.i, p.last
		if n, err := p.parseRelation(); err == nil {
			return n, nil
		}
		p.i, p.last = save, last
		p.next()
		n, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != tOp || c.text != ")" {
			return nil, errAt(c, "expected ')' or and/or, found %s", describe(c))
		}
		p.next()
		return n, nil
	}
	if p.startsRelation() {
		return p.parseRelation()
	}
	if t.kind != tWord {
		return nil, errAt(t, "expected a primitive, found %s", describe(t))
	}
	return p.parsePrimitive()
}

// startsRelation: a header field (tcp[...]) or a number followed by an
// operator begins a comparison.
func (p *parser) startsRelation() bool {
	t, n := p.peek(), p.peekN(1)
	if t.kind != tWord {
		return false
	}
	if _, ok := fields[strings.ToLower(t.text)]; ok && n.kind == tOp && n.text == "[" {
		return true
	}
	if _, ok := namedConst(t.text); ok && n.kind == tOp && isArithOrRel(n.text) {
		return true
	}
	return false
}

func isArithOrRel(op string) bool {
	switch op {
	case "&", "|", "+", "-", "*", "/", "<<", ">>", "==", "=", "!=", "<", "<=", ">", ">=":
		return true
	}
	return false
}

var protoQuals = map[string]bool{"ip": true, "ip6": true, "tcp": true, "udp": true, "sctp": true}
var typeQuals = map[string]bool{"host": true, "net": true, "port": true, "portrange": true}

// keywords are words that are never an id.
var keywords = map[string]bool{
	"ip": true, "ip6": true, "tcp": true, "udp": true, "sctp": true, "icmp": true, "icmp6": true,
	"host": true, "net": true, "port": true, "portrange": true, "src": true, "dst": true,
	"proto": true, "mask": true, "and": true, "or": true, "not": true,
}

// unsupported names libpcap primitives pktdrop does not evaluate, so the
// error can say so instead of "unknown word".
var unsupported = map[string]bool{
	"ether": true, "arp": true, "rarp": true, "vlan": true, "mpls": true, "gateway": true, "broadcast": true,
	"multicast": true, "less": true, "greater": true, "len": true, "igmp": true, "pim": true, "vrrp": true,
	"protochain": true, "inbound": true, "outbound": true, "ifname": true, "on": true, "wlan": true, "link": true,
	"decnet": true, "atalk": true, "ipx": true, "iso": true, "stp": true, "netbeui": true, "pppoed": true,
	"pppoes": true, "geneve": true, "ah": true, "esp": true, "ah6": true, "esp6": true, "ip6multicast": true,
	"ipbroadcast": true, "ipmulticast": true, "fddi": true, "tr": true, "ppp": true, "slip": true, "radio": true,
	"llc": true, "type": true, "subtype": true, "dir": true, "addr1": true, "addr2": true, "addr3": true, "addr4": true,
	"ra": true, "ta": true, "any": true,
}

func (p *parser) parsePrimitive() (node, *posError) {
	start := p.peek()
	var q qual
	qualified := false
	w := strings.ToLower(start.text)
	if unsupported[w] {
		return nil, errAt(start, "%q is not supported (pktdrop sees IPv4/IPv6 headers only)", start.text)
	}
	// Protocol keywords.
	if protoQuals[w] || w == "icmp" || w == "icmp6" {
		p.next()
		nt := strings.ToLower(p.peek().text)
		if p.peek().kind == tWord && (w == "ip" || w == "ip6") && nt == "proto" {
			p.next()
			return p.parseProtoNum(w)
		}
		if p.peek().kind != tWord || !(typeQuals[nt] || nt == "src" || nt == "dst") {
			if p.peek().kind == tWord && !keywords[nt] {
				return nil, errAt(p.peek(), "expected and, or, host, net, port or portrange after %q, found %s", start.text, describe(p.peek()))
			}
			return protoNode(w), nil
		}
		if w == "icmp" || w == "icmp6" {
			return nil, errAt(p.peek(), "%q cannot qualify %s", start.text, nt)
		}
		q.proto, qualified = w, true
	}
	if w == "proto" {
		p.next()
		return p.parseProtoNum("")
	}
	// Direction.
	if t := strings.ToLower(p.peek().text); p.peek().kind == tWord && (t == "src" || t == "dst") {
		p.next()
		q.dir, qualified = t, true
		if c, o := p.peek(), p.peekN(1); (isOr(c) || isAnd(c)) && o.kind == tWord {
			if other := strings.ToLower(o.text); (other == "src" || other == "dst") && other != t {
				p.next()
				p.next()
				if isOr(c) {
					q.dir = "src or dst"
				} else {
					q.dir = "src and dst"
				}
			}
		}
	}
	// Type.
	if t := strings.ToLower(p.peek().text); p.peek().kind == tWord && typeQuals[t] {
		p.next()
		q.typ, qualified = t, true
	}
	if !qualified {
		// A bare id inherits the last qualifiers; with none yet, it is
		// a syntax error in libpcap too.
		if p.last.typ == "" {
			return nil, errAt(start, "unknown primitive %q (an address needs host or net before it)", start.text)
		}
		q = p.last
	}
	if q.typ == "" {
		q.typ = "host"
	}
	idTok := p.peek()
	if idTok.kind != tWord || keywords[strings.ToLower(idTok.text)] {
		if !qualified {
			if unsupported[strings.ToLower(idTok.text)] {
				return nil, errAt(idTok, "%q is not supported (pktdrop sees IPv4/IPv6 headers only)", idTok.text)
			}
			return nil, errAt(idTok, "expected a primitive, found %s", describe(idTok))
		}
		return nil, errAt(idTok, "expected %s after %s, found %s", idWant(q.typ), strings.TrimSpace(q.proto+" "+q.dir+" "+q.typ), describe(idTok))
	}
	p.next()
	p.last = q
	n, err := p.primitive(q, idTok)
	if err != nil && !qualified && !looksLikeID(idTok.text) {
		return nil, errAt(idTok, "unknown primitive %q", idTok.text)
	}
	return n, err
}

// looksLikeID: a number or an address, what a bare id can be.
func looksLikeID(s string) bool {
	if _, ok := parseNum(s); ok {
		return true
	}
	_, err := netip.ParseAddr(strings.Split(s, "/")[0])
	return err == nil
}

func idWant(typ string) string {
	switch typ {
	case "net":
		return "a network (10.0.0.0/8, 10.1, fd00::/64, 10.0.0.0 mask 255.0.0.0)"
	case "port":
		return "a port number"
	case "portrange":
		return "a port range (1000-2000)"
	}
	return "an IPv4 or IPv6 address"
}

func protoNode(w string) node {
	switch w {
	case "ip":
		return eq(opFamily, 4)
	case "ip6":
		return eq(opFamily, 6)
	case "icmp":
		return and(eq(opFamily, 4), eq(opProto, 1))
	case "icmp6":
		return and(eq(opFamily, 6), eq(opProto, 58))
	}
	// tcp, udp, sctp: either family (the tuple's family is always 4 or 6).
	return eq(opProto, uint16(protoNumbers[w]))
}

var protoNumbers = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "icmp6": 58, "sctp": 132}

// protoNames are the /etc/protocols names libpcap takes after proto.
var protoNames = map[string]uint8{"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51,
	"ipv6-icmp": 58, "sctp": 132}

// parseProtoNum: `proto N`, `ip proto N`, `ip6 proto N`; N is a number or
// an escaped name (`\tcp`).
func (p *parser) parseProtoNum(family string) (node, *posError) {
	t := p.peek()
	if t.kind != tWord {
		return nil, errAt(t, "expected a protocol number or name (\\tcp) after proto, found %s", describe(t))
	}
	p.next()
	name := strings.ToLower(strings.TrimPrefix(t.text, "\\"))
	var n uint8
	if v, ok := protoNames[name]; ok {
		n = v
	} else if v, ok := parseNum(t.text); ok && v <= 255 {
		n = uint8(v)
	} else {
		return nil, errAt(t, "want a protocol number 0-255 or \\tcp, \\udp, \\icmp, \\ipv6-icmp, \\sctp, found %s", describe(t))
	}
	pn := eq(opProto, uint16(n))
	switch family {
	case "ip":
		return and(eq(opFamily, 4), pn), nil
	case "ip6":
		return and(eq(opFamily, 6), pn), nil
	}
	return pn, nil
}
