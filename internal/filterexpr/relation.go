package filterexpr

import "strings"

// A comparison reads one of the header bytes the tuple keeps: TCP flags
// and the ICMP/ICMPv6 type and code.
type field struct {
	proto string // tcp, icmp, icmp6
	op    opT
}

// fields are the protocols that can be indexed; index picks the byte.
var fields = map[string]bool{"tcp": true, "icmp": true, "icmp6": true}

func fieldAt(proto string, off uint32) (field, bool) {
	switch {
	case proto == "tcp" && off == 13:
		return field{proto, opTCPFlags}, true
	case (proto == "icmp" || proto == "icmp6") && off == 0:
		return field{proto, opICMPType}, true
	case (proto == "icmp" || proto == "icmp6") && off == 1:
		return field{proto, opICMPCode}, true
	}
	return field{}, false
}

var constNames = map[string]uint32{
	"tcpflags": 13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
	"tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,
	"icmptype": 0, "icmpcode": 1, "icmp6type": 0, "icmp6code": 1,
	"icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5, "icmp-echo": 8,
	"icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11, "icmp-paramprob": 12,
	"icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15, "icmp-ireqreply": 16,
	"icmp-maskreq": 17, "icmp-maskreply": 18,
	"icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
	"icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
	"icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
	"icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
	"icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
}

func namedConst(s string) (uint32, bool) {
	if v, ok := constNames[strings.ToLower(s)]; ok {
		return v, true
	}
	return parseNum(s)
}

// value is an arithmetic operand: a constant, or a header byte ANDed with
// a mask (the only arithmetic on a field the tuple can answer).
type value struct {
	isField bool
	f       field
	mask    uint32
	c       uint32
	tok     token
}

// parseRelation: arith relop arith, e.g. tcp[tcpflags] & (tcp-syn|tcp-fin) != 0.
func (p *parser) parseRelation() (node, *posError) {
	l, err := p.parseArith(0)
	if err != nil {
		return nil, err
	}
	opTok := p.peek()
	switch opTok.text {
	case "==", "=", "!=", "<", "<=", ">", ">=":
	default:
		return nil, errAt(opTok, "expected a comparison (==, !=, <, <=, >, >=), found %s", describe(opTok))
	}
	p.next()
	r, err := p.parseArith(0)
	if err != nil {
		return nil, err
	}
	rel := opTok.text
	if !l.isField && r.isField {
		l, r = r, l
		if f, ok := map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<="}[rel]; ok {
			rel = f
		}
	}
	if !l.isField {
		return constNode(compare(l.c, rel, r.c)), nil
	}
	if r.isField {
		return nil, errAt(r.tok, "comparing two header fields is not supported")
	}
	return relationNode(l.f, l.mask, rel, r.c), nil
}

func compare(a uint32, rel string, b uint32) bool {
	switch rel {
	case "==", "=":
		return a == b
	case "!=":
		return a != b
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	}
	return a >= b
}

// relationNode tests (byte & mask) rel c in the kernel as a range, after
// working out over all 256 byte values whether the answer is fixed.
func relationNode(f field, mask uint32, rel string, c uint32) node {
	var lo, hi uint32 = 256, 0
	all, none := true, true
	for b := uint32(0); b < 256; b++ {
		v := b & mask
		if compare(v, rel, c) {
			none = false
			lo, hi = min(lo, v), max(hi, v)
		} else {
			all = false
		}
	}
	var test node
	switch {
	case all:
		test = constNode(true)
	case none:
		test = constNode(false)
	case rel == "!=":
		test = notNode{&atom{op: f.op, mask: uint16(mask & 0xff), lo: uint16(c), hi: uint16(c)}}
	default:
		// ==, <, <=, >, >= select one interval of v.
		test = &atom{op: f.op, mask: uint16(mask & 0xff), lo: uint16(lo), hi: uint16(hi)}
	}
	// As in libpcap, an indexed protocol implies its IP version (tcp[]
	// and icmp[] are IPv4 only) and the protocol; only the comparison
	// itself is negated by !=.
	var guard node
	switch f.proto {
	case "tcp":
		guard = and(eq(opFamily, 4), eq(opProto, 6))
	case "icmp":
		guard = protoNode("icmp")
	default:
		guard = protoNode("icmp6")
	}
	return and(guard, test)
}

// parseArith is precedence climbing over libpcap's operator levels.
func (p *parser) parseArith(minPrec int) (value, *posError) {
	l, err := p.parseOperand()
	if err != nil {
		return value{}, err
	}
	for {
		t := p.peek()
		prec, ok := arithPrec[t.text]
		if t.kind != tOp || !ok || prec < minPrec {
			return l, nil
		}
		p.next()
		r, err := p.parseArith(prec + 1)
		if err != nil {
			return value{}, err
		}
		if l, err = combine(l, t, r); err != nil {
			return value{}, err
		}
	}
}

var arithPrec = map[string]int{"|": 1, "&": 2, "<<": 3, ">>": 3, "+": 4, "-": 4, "*": 5, "/": 5}

func combine(l value, op token, r value) (value, *posError) {
	if !l.isField && !r.isField {
		a, b := l.c, r.c
		var v uint32
		switch op.text {
		case "|":
			v = a | b
		case "&":
			v = a & b
		case "<<":
			v = a << (b & 31)
		case ">>":
			v = a >> (b & 31)
		case "+":
			v = a + b
		case "-":
			v = a - b
		case "*":
			v = a * b
		case "/":
			if b == 0 {
				return value{}, errAt(op, "division by zero")
			}
			v = a / b
		}
		return value{c: v, tok: l.tok}, nil
	}
	if op.text == "&" && l.isField != r.isField {
		if r.isField {
			l, r = r, l
		}
		l.mask &= r.c
		return l, nil
	}
	return value{}, errAt(op, "only `field & constant` arithmetic on a header field is supported")
}

func (p *parser) parseOperand() (value, *posError) {
	t := p.next()
	if t.kind == tOp && t.text == "(" {
		v, err := p.parseArith(0)
		if err != nil {
			return value{}, err
		}
		if c := p.next(); c.text != ")" {
			return value{}, errAt(c, "expected ')', found %s", describe(c))
		}
		return v, nil
	}
	if t.kind != tWord {
		return value{}, errAt(t, "expected a number or a header field, found %s", describe(t))
	}
	name := strings.ToLower(t.text)
	if fields[name] && p.peek().text == "[" {
		p.next()
		idx, err := p.parseArith(0)
		if err != nil {
			return value{}, err
		}
		size := uint32(1)
		// tcp[13:1]: the scanner keeps "13:1" as one word.
		if idx.isField {
			return value{}, errAt(idx.tok, "a header field cannot index another")
		}
		end := p.next()
		if end.text != "]" {
			return value{}, errAt(end, "expected ']', found %s", describe(end))
		}
		if idx.tok.text != "" && strings.Contains(idx.tok.text, ":") {
			off, sz, _ := strings.Cut(idx.tok.text, ":")
			o, ok1 := namedConst(off)
			s, ok2 := parseNum(sz)
			if !ok1 || !ok2 {
				return value{}, errAt(idx.tok, "want offset:size, e.g. 13:1")
			}
			idx.c, size = o, s
		}
		f, ok := fieldAt(name, idx.c)
		if !ok || size != 1 {
			return value{}, errAt(t, "%s: pktdrop keeps only tcp[13] (tcpflags), icmp[0|1] and icmp6[0|1] (type, code), one byte each", t.text+"["+idx.tok.text+"]")
		}
		return value{isField: true, f: f, mask: 0xff, tok: t}, nil
	}
	if strings.Contains(t.text, ":") {
		// offset:size inside brackets, checked by the caller.
		off, _, _ := strings.Cut(t.text, ":")
		v, ok := namedConst(off)
		if !ok {
			return value{}, errAt(t, "want a number, found %q", t.text)
		}
		return value{c: v, tok: t}, nil
	}
	v, ok := namedConst(t.text)
	if !ok {
		return value{}, errAt(t, "want a number, a named constant (tcp-syn, icmp-echo ...) or a header field, found %q", t.text)
	}
	return value{c: v, tok: t}, nil
}
